/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Placeholder: implementation in progress. */
#include "s2s/error.h"
