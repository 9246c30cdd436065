"""The scheduled runs this version wants, for the deployment to install as systemd timers.

``sealmail timers --json`` lists them; the ``sealmail`` role makes one ``sealmail-<name>.service``
(the command, as the services' user, with the settings of the env file) and one
``sealmail-<name>.timer`` (the schedule) per entry, so the schedule and the command live here, not in
the role. ``on_calendar`` is a systemd calendar expression (systemd.time(7)); the random delay
spreads hosts apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Timer:
    name: str  # the units are sealmail-<name>.service and .timer
    description: str
    command: tuple[str, ...]  # the arguments of `sealmail`
    on_calendar: str
    randomized_delay_seconds: int
    persistent: bool = True  # a run missed while the host was off happens at the next boot

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "command": list(self.command)}


TIMERS = (
    Timer(
        name="doctor-alert",
        description="Sealmail deliverability check: log and mail new problems",
        command=("doctor", "--alert"),
        on_calendar="daily",
        randomized_delay_seconds=3600,
    ),
)
