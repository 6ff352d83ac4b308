"""Start one process per rank on this host, torchrun-style:

    python -m vibetensor.torch.distributed.run --nproc-per-node 2 train.py --device cuda ...
    python -m vibetensor.torch.distributed.run --nproc-per-node 2 -m some.module ...

Each process gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT (a free port unless
--master-port is given). When one rank fails the others are stopped (SIGTERM, then SIGKILL after --grace-s), and
the launcher exits with the failing rank's code after naming it; Ctrl-C stops every rank.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time


def _free_port(addr: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((addr, 0))
        return sock.getsockname()[1]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m vibetensor.torch.distributed.run",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nproc-per-node", "--nproc_per_node", dest="nproc", type=int, default=1,
                        help="processes (ranks) to start on this host (default 1)")
    parser.add_argument("--master-addr", "--master_addr", dest="master_addr", default="127.0.0.1")
    parser.add_argument("--master-port", "--master_port", dest="master_port", type=int, default=0,
                        help="rank 0's rendezvous port (default: a free port)")
    parser.add_argument("--grace-s", type=float, default=10.0,
                        help="seconds the other ranks get to exit after one failed, before SIGKILL (default 10)")
    parser.add_argument("-m", dest="module", action="store_true", help="run the script argument as a module")
    parser.add_argument("script", help="the training script (or module with -m)")
    parser.add_argument("script_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.nproc < 1:
        parser.error("--nproc-per-node must be at least 1")
    return args


def _stop(procs: list[subprocess.Popen], grace_s: float) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    port = args.master_port or _free_port(args.master_addr)
    command = [sys.executable] + (["-m", args.script] if args.module else [args.script]) + args.script_args
    procs: list[subprocess.Popen] = []
    try:
        for rank in range(args.nproc):
            env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(args.nproc),
                       LOCAL_WORLD_SIZE=str(args.nproc), MASTER_ADDR=args.master_addr, MASTER_PORT=str(port))
            procs.append(subprocess.Popen(command, env=env))
        while True:
            codes = [p.poll() for p in procs]
            failed = [(rank, c) for rank, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                rank, code = failed[0]
                print(f"vibetensor.distributed.run: rank {rank} exited with code {code}; stopping the other ranks",
                      file=sys.stderr, flush=True)
                _stop(procs, args.grace_s)
                return code if code > 0 else 128 - code
            if all(c == 0 for c in codes):
                return 0
            time.sleep(0.05)
    except KeyboardInterrupt:
        print("vibetensor.distributed.run: interrupted; stopping every rank", file=sys.stderr, flush=True)
        _stop(procs, args.grace_s)
        return 130


if __name__ == "__main__":
    sys.exit(main())
