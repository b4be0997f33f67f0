"""argparse pieces every command line here shares: the CLI's and the explorer's (`python -m ...explore`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake on the command line told in one line, as every other mistake is (argparse
    prints the whole usage block first); the usage is what --help is for. Subcommands' parsers are of this
    class too (add_subparsers makes its parent's)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def path_arg(text: str) -> Path:
    """An argparse type: a path, refusing the empty one (Path("") is the current folder)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path; give a file or folder name")
    return Path(text)
