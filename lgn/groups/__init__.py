"""Groups acting on filters: parametrisations, their registry by name, orbits, known operators. No nn layers, no I/O."""

from lgn.groups import operators
from lgn.groups.generators import (
    REGULARIZERS,
    CyclicGenerator,
    FixedGenerator,
    FreeGenerator,
    Generator,
    PermutationGenerator,
    SelectionGenerator,
    unit_frobenius_,
)
from lgn.groups.orbit import matrix_powers, orbit
from lgn.groups.registry import (
    GeneratorShape,
    generator_names,
    is_generator,
    make_generator,
    register_generator,
    register_generator_prefix,
    takes_option,
)

__all__ = [
    "operators",
    "REGULARIZERS",
    "CyclicGenerator",
    "FixedGenerator",
    "FreeGenerator",
    "Generator",
    "PermutationGenerator",
    "SelectionGenerator",
    "unit_frobenius_",
    "matrix_powers",
    "orbit",
    "GeneratorShape",
    "generator_names",
    "is_generator",
    "make_generator",
    "register_generator",
    "register_generator_prefix",
    "takes_option",
]
