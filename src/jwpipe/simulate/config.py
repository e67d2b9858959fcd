"""Simulation parameters, NIRCam readout patterns, detector layout and frame timing."""

from __future__ import annotations

from dataclasses import dataclass

from jwpipe.errors import ValidationError

__all__ = [
    "ARCSEC_PER_PIXEL",
    "DETECTORS",
    "READOUT_PATTERNS",
    "REFERENCE_BORDER",
    "SimulationConfig",
    "frame_time",
]

#: NIRCam readout patterns: name -> (NFRAMES, GROUPGAP).
READOUT_PATTERNS: dict[str, tuple[int, int]] = {
    "RAPID": (1, 0),
    "BRIGHT1": (1, 1),
    "BRIGHT2": (2, 0),
    "SHALLOW2": (2, 3),
    "SHALLOW4": (4, 1),
    "MEDIUM2": (2, 8),
    "MEDIUM8": (8, 2),
    "DEEP2": (2, 18),
    "DEEP8": (8, 12),
}

#: Short-wavelength NIRCam detectors: name -> (module, grid column, grid row, FASTAXIS, SLOWAXIS).
#: The grid places the detectors of the synthetic focal plane (2 x 2 per module).
DETECTORS: dict[str, tuple[str, int, int, int, int]] = {
    "NRCA1": ("A", 0, 1, -1, 2),
    "NRCA2": ("A", 0, 0, 1, -2),
    "NRCA3": ("A", 1, 1, -1, 2),
    "NRCA4": ("A", 1, 0, 1, -2),
    "NRCB1": ("B", 3, 0, 1, -2),
    "NRCB2": ("B", 3, 1, -1, 2),
    "NRCB3": ("B", 2, 0, 1, -2),
    "NRCB4": ("B", 2, 1, -1, 2),
}

ARCSEC_PER_PIXEL = 0.031
REFERENCE_BORDER = 4
FULL_FRAME = 2048
FULL_FRAME_TFRAME = 10.73677


def frame_time(nx: int, ny: int, noutputs: int) -> float:
    """NIRCam frame time in seconds: ``(nx/noutputs + 12) * (ny + 1) * 10 us``.

    The full frame (2048x2048, 4 outputs) uses the operational value 10.73677 s.
    """
    if (nx, ny, noutputs) == (FULL_FRAME, FULL_FRAME, 4):
        return FULL_FRAME_TFRAME
    return (nx // noutputs + 12) * (ny + 1) * 1e-5


@dataclass
class SimulationConfig:
    """Everything that defines a simulation (all defaults realistic for NIRCam SW imaging).

    See :func:`jwpipe.simulate.simulate_field` for the meaning of each field.
    """

    n_exposures: int = 4
    detectors: tuple[str, ...] = ("NRCA1",)
    size: int = 256
    ngroups: int = 10
    nints: int = 1
    readpatt: str = "RAPID"
    seed: int = 1
    filter: str = "F200W"
    pupil: str = "CLEAR"
    program: str = "01234"
    observation: str = "001"
    visit: str = "001"
    ra: float = 53.16
    dec: float = -27.79
    roll: float = 15.0
    date_obs: str = "2023-06-01T12:00:00.000"
    frame_time: float | None = None
    n_stars: int | None = None
    n_galaxies: int | None = None
    star_flux_range: tuple[float, float] = (0.3, 300.0)
    galaxy_flux_range: tuple[float, float] = (0.5, 100.0)
    background: float = 0.2
    psf_fwhm: float = 2.1
    cr_rate: float = 2e-5
    cr_amplitude_range: tuple[float, float] = (10.0, 5000.0)
    pointing_error: tuple[float, float] = (0.1, 0.5)
    roll_error: float = 0.01
    dithers: list[tuple[float, float]] | None = None
    useafter: str = "2022-01-01T00:00:00"
    hot_fraction: float = 1e-3
    dead_fraction: float = 5e-4

    def __post_init__(self) -> None:
        names = [self.detectors] if isinstance(self.detectors, str) else list(self.detectors)
        parts = [part.strip().upper() for name in names for part in str(name).split(",")
                 if part.strip()]
        # multi-detector mode: "sw" (or "all") is the 8 short-wave detectors of one pointing
        self.detectors = tuple(d for part in parts
                               for d in (DETECTORS if part in ("SW", "ALL") else (part,)))
        self.readpatt = self.readpatt.strip().upper()
        self.filter = self.filter.strip().upper()
        self.pupil = self.pupil.strip().upper()
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ValidationError` naming the first invalid parameter."""
        if self.n_exposures < 1:
            raise ValidationError(f"simulate: n_exposures must be >= 1, got {self.n_exposures}")
        if not self.detectors:
            raise ValidationError("simulate: at least one detector is needed")
        for det in self.detectors:
            if det not in DETECTORS:
                raise ValidationError(
                    f"simulate: detector {det.lower()!r} not supported; choose from "
                    f"{', '.join(d.lower() for d in DETECTORS)}"
                )
        if len(set(self.detectors)) != len(self.detectors):
            raise ValidationError(f"simulate: duplicate detectors {self.detectors}")
        if not 16 <= self.size <= FULL_FRAME:
            raise ValidationError(f"simulate: size must be 16..2048 pixels, got {self.size}")
        if self.readpatt not in READOUT_PATTERNS:
            raise ValidationError(
                f"simulate: readout pattern {self.readpatt!r} unknown; choose from "
                f"{', '.join(READOUT_PATTERNS)}"
            )
        if self.ngroups < 1 or self.nints < 1:
            raise ValidationError(
                f"simulate: ngroups and nints must be >= 1, got {self.ngroups}, {self.nints}"
            )
        if not (len(self.program) == 5 and self.program.isdigit()):
            raise ValidationError(f"simulate: program must be 5 digits, got {self.program!r}")
        if self.cr_rate < 0 or self.background < 0:
            raise ValidationError("simulate: cr_rate and background must be >= 0")
        if self.frame_time is not None and self.frame_time <= 0:
            raise ValidationError(f"simulate: frame_time must be > 0, got {self.frame_time}")

    @property
    def nframes(self) -> int:
        """Frames averaged per group."""
        return READOUT_PATTERNS[self.readpatt][0]

    @property
    def groupgap(self) -> int:
        """Frames dropped between groups."""
        return READOUT_PATTERNS[self.readpatt][1]

    @property
    def noutputs(self) -> int:
        """Amplifiers read out: 4 for the full frame, 1 for smaller arrays (as NIRCam)."""
        return 4 if self.size == FULL_FRAME else 1

    @property
    def subarray(self) -> str:
        """SUBARRAY name: FULL, or SUB<size> for the synthetic square subarrays."""
        return "FULL" if self.size == FULL_FRAME else f"SUB{self.size}"

    @property
    def tframe(self) -> float:
        """Frame time (s)."""
        if self.frame_time is not None:
            return float(self.frame_time)
        return frame_time(self.size, self.size, self.noutputs)

    @property
    def tgroup(self) -> float:
        """Group time (s): ``TFRAME * (NFRAMES + GROUPGAP)``."""
        return self.tframe * (self.nframes + self.groupgap)
