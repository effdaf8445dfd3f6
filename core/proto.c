/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Placeholder: implementation in progress (lead). */
#include "s2s/proto.h"
