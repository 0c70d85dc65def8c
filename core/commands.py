"""The base of our management commands: help texts are lazy translations (issue #11), argparse wants plain text.

``BaseCommand`` hands ``help`` and every argument's ``help`` to argparse as given; a lazy translation there makes
``manage.py <command> --help`` crash. Rendering them once the parser is built, in the language active then, is
the one place to do it for every command.
"""
from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand as DjangoBaseCommand
from django.utils.functional import Promise


def _plain_help(parser: argparse.ArgumentParser) -> None:
    if isinstance(parser.description, Promise):
        parser.description = str(parser.description)
    for action in parser._actions:
        if isinstance(action.help, Promise):
            action.help = str(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if isinstance(choice.help, Promise):
                    choice.help = str(choice.help)
            for sub in action.choices.values():
                _plain_help(sub)


class BaseCommand(DjangoBaseCommand):
    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> Any:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        _plain_help(parser)
        return parser
