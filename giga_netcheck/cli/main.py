"""The thin Typer CLI: one module per command group, assembled here. The only place that exits."""

from __future__ import annotations

from giga_netcheck.cli import board, probe, schedule
from giga_netcheck.cli.profiles import profiles_app
from giga_netcheck.cli.run import app

app.add_typer(profiles_app, name="profiles")  # profiles list | show | validate
schedule.register(app)  # schedule, history
probe.register(app)  # probe load
board.register(app)  # batch, upload


def main() -> None:
    app()


if __name__ == "__main__":
    main()
