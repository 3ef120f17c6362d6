"""Groups acting on filters: parametrisations, orbits, known operators. No nn layers, no I/O."""

from lgn.groups import operators
from lgn.groups.generators import (
    REGULARIZERS,
    CyclicGenerator,
    FixedGenerator,
    FreeGenerator,
    Generator,
    PermutationGenerator,
    SelectionGenerator,
    make_generator,
    unit_frobenius_,
)
from lgn.groups.orbit import matrix_powers, orbit

__all__ = [
    "operators",
    "REGULARIZERS",
    "CyclicGenerator",
    "FixedGenerator",
    "FreeGenerator",
    "Generator",
    "PermutationGenerator",
    "SelectionGenerator",
    "make_generator",
    "unit_frobenius_",
    "matrix_powers",
    "orbit",
]
