"""Every command, option and positional argument of `flatgroove` explains itself."""

from __future__ import annotations

import argparse

import pytest

from flatgroove.cli import build_parser


def _walk(parser: argparse.ArgumentParser, path: str = "flatgroove"):
    """(command path, action) for every action of every (sub)command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {a.dest for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", ("command", name in helped)
                yield from _walk(sub, f"{path} {name}")
        else:
            yield path, action


def test_every_option_and_argument_has_help():
    missing = []
    seen = 0
    for where, action in _walk(build_parser()):
        if isinstance(action, tuple):
            if not action[1]:
                missing.append(f"{where}: the command has no help line")
            continue
        seen += 1
        if action.help in (None, "", argparse.SUPPRESS):
            name = "/".join(action.option_strings) or action.dest
            missing.append(f"{where}: {name}")
    assert seen > 100  # the walk really reached the subcommands
    assert not missing, "no help text:\n" + "\n".join(missing)


def test_sample_has_no_bar_option_and_inputs_do():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    opts = {name: {o for a in p._actions for o in a.option_strings} for name, p in sub.choices.items()}
    assert "--bar" not in opts["sample"]  # sample reads no MIDI input
    for name in ("interpolate", "blend", "reconstruct", "encode"):
        assert "--bar" in opts[name]
    for name in ("interpolate", "blend", "sample", "reconstruct", "jam", "demo"):
        assert "--soundfont" in opts[name], name  # every command that writes WAV


@pytest.mark.parametrize("cmd", ["train", "evaluate", "sample", "jam", "data"])
def test_help_prints(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([cmd, "--help"])
    assert e.value.code == 0
    assert "usage: flatgroove " + cmd in capsys.readouterr().out
