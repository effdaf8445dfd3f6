#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Print a free TCP port on 127.0.0.1 for a server a script starts later.

Picked below the kernel's ephemeral range (ip_local_port_range): the kernel
never hands those out by itself (bind to port 0, outgoing connections), and
the C tests take theirs from the ephemeral range (bl_free_port), so between
this pick and the server's bind no other test process gets the same port by
chance.  Falls back to a kernel-chosen port when that range is too small.
"""
import random
import socket

try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
except (OSError, ValueError, IndexError):
    low = 0
port = 0
if low - 1024 >= 2000:
    for _ in range(500):
        p = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
        port = p
        break
if not port:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
print(port)
