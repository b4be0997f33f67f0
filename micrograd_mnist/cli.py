"""`micrograd-mnist`: the command line."""

from __future__ import annotations

import argparse
import sys

PLANNED = {
    "train": "train an MLP on MNIST with the Tensor engine",
    "evaluate": "accuracy of a checkpoint on the test set",
    "predict": "classify one image",
    "backprop": "step through backprop one chain-rule step at a time",
    "demo": "the seed texts' demos, with pictures",
    "plot": "pictures of a trained network",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="micrograd-mnist", description=__doc__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    moons = commands.add_parser("moons", help="micrograd's demo: a scalar-engine MLP learns two moons")
    moons.add_argument("--steps", type=int, default=100, help="SGD steps (default 100)")
    moons.add_argument("--seed", type=int, default=1)
    for name, text in PLANNED.items():
        commands.add_parser(name, help=f"{text} (coming soon)", add_help=False)
    args, _ = parser.parse_known_args(argv)

    if args.command == "moons":
        from .moons import train

        if args.steps < 1:
            parser.error("--steps must be at least 1")
        accuracy = train(args.steps, args.seed)
        print(f"moons: final training accuracy {accuracy:.0%} after {args.steps} steps")
        return 0
    if args.command in PLANNED:
        print(f"micrograd-mnist {args.command}: not implemented yet ({PLANNED[args.command]})", file=sys.stderr)
        return 2
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
