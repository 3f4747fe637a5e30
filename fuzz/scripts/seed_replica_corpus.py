#!/usr/bin/env python3
"""Seed inputs for the replica targets (format: fuzz/src/lib.rs), made from the message
corpora: each seed is a scenario byte, then message steps from random senders carrying
corpus messages, with clock steps, timer firings and an occasional crash-restart between.
Deterministic (fixed seed). Usage: seed_replica_corpus.py <msg corpus dir> <out dir> <count>"""
import os, random, struct, sys

src, out, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(20261203)
msgs = [open(os.path.join(src, f), 'rb').read() for f in sorted(os.listdir(src))]
msgs = [m for m in msgs if 0 < len(m) <= 4096]
os.makedirs(out, exist_ok=True)
for i in range(count):
    b = bytearray([rng.randrange(256)])
    for _ in range(rng.randrange(2, 24)):
        r = rng.random()
        if r < 0.75:
            m = rng.choice(msgs)
            b += bytes([0, rng.randrange(256)]) + struct.pack('<H', len(m)) + m
        elif r < 0.88:
            b += bytes([5, rng.randrange(256)])
        elif r < 0.97:
            b += bytes([6])
        else:
            b += bytes([7])
    with open(os.path.join(out, f'seed-{i:03d}'), 'wb') as f:
        f.write(b)
