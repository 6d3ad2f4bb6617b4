"""The velocity field of an extended source through spec2, against the simulator's truth (issue 12).

A rotating disc in Br gamma, without sky or atmosphere (no sky members: the sky's subtraction has
its own test in ``test_spec2``), on the small layout with the truth's references. Each spaxel's
line is fitted in the cube (a Gaussian on a linear continuum, ``ifs_helpers.line_centre``) and its
centre turned into a line-of-sight velocity ``v = c (lambda / lambda_0 - 1)``.
"""

import numpy as np
import pytest
from ifs_helpers import FILTER, ifs_detector, level1_frame, simulate, spec2_overrides

from liger_iris_pipeline.pipeline.spec2 import ProcessIFSL2Pipeline
from liger_iris_pipeline.simulate import ifs
from liger_iris_pipeline.simulate.ifs.validation import line_velocities

# Faint enough that many spaxels are near the target's S/N of 20 in the line.
DISC = ifs.RotatingDisc(3.6, 2.4, flux=300.0, scale_length=2.0, r_turn=1.0)


@pytest.mark.parametrize("seed", [None, 5], ids=["noiseless", "noisy"])
def test_velocity_field_of_a_rotating_disc(seed):
    """Within 5 km/s rms at S/N > 20 in the line. The noiseless frame shows the floor: light shared between
    neighbouring spaxels of a slice (detector pixels straddling their boundaries, resampled by cube_build),
    2.7 km/s where the velocity changes by up to ~100 km/s per spaxel; 0.3 km/s for a disc ten times slower."""
    layout = ifs.SlicerLayout.small()
    detector = ifs_detector(layout)
    ramp, truth = simulate(ifs.IFSScene(discs=[DISC], sky=False, telluric=False), layout, detector)
    cube = ProcessIFSL2Pipeline.call(
        level1_frame(truth, ramp, detector, seed=seed), steps=spec2_overrides(layout, detector)
    )
    (rest,) = truth.sources["line_wavelength"]
    velocity, signal_to_noise = line_velocities(cube, rest, layout.dispersion(FILTER))
    measured = signal_to_noise > 20
    errors = (velocity - truth.velocity)[measured]
    rms = np.sqrt(np.mean(errors**2))
    print(f"{seed=}: velocity rms {rms:.2f} km/s over {measured.sum()} spaxels at S/N > 20")
    assert measured.sum() >= 20 and np.ptp(truth.velocity[measured]) > 200.0
    assert rms < 5.0
