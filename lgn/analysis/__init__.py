"""Reading learned groups: structure indices, group-ness, nearest known operation, the probe, figures, report.

Numbers live in numpy-only modules (:mod:`~lgn.analysis.measures`,
:mod:`~lgn.analysis.matching`, :mod:`~lgn.analysis.probe`,
:mod:`~lgn.analysis.summary`); matplotlib is imported only inside
:mod:`~lgn.analysis.figures` when a figure is drawn, and
:mod:`~lgn.analysis.report` writes the HTML page.
"""

from lgn.analysis.energy import code_energy
from lgn.analysis.datafree import data_free_generators, generator_cosines
from lgn.analysis.matching import (Match, cosine_similarity, nearest_operation, nearest_operations, orbit_null,
                                   orbit_residual, orbit_residuals, similarity_matrix)
from lgn.analysis.measures import (
    GROUP_ERROR_NAMES,
    INDEX_NAMES,
    block_index,
    circulant_index,
    dft_conjugate,
    dft_diagonal_index,
    dft_top_index,
    finite_order_error,
    group_errors,
    orbit_norms,
    orthogonality_error,
    skew_index,
    structure_indices,
    symmetric_index,
    toeplitz_index,
)
from lgn.analysis.probe import PROBE_OPERATIONS, ProbeFit, compare_generators, fit_linear_map, run_probe
from lgn.analysis.report import write_report
from lgn.analysis.summary import (
    Groups,
    analyze_groups,
    format_table,
    groups_from_model,
    load_groups,
    load_run_groups,
    save_groups,
    write_analysis,
)

__all__ = [
    "code_energy", "data_free_generators", "generator_cosines", "Match", "cosine_similarity", "nearest_operation",
    "nearest_operations", "orbit_null", "orbit_residual", "orbit_residuals", "similarity_matrix", "orbit_norms",
    "GROUP_ERROR_NAMES", "INDEX_NAMES", "block_index", "circulant_index", "dft_conjugate",
    "dft_diagonal_index", "dft_top_index", "finite_order_error", "group_errors", "orthogonality_error",
    "skew_index", "structure_indices", "symmetric_index", "toeplitz_index",
    "PROBE_OPERATIONS", "ProbeFit", "compare_generators", "fit_linear_map", "run_probe", "write_report",
    "Groups", "analyze_groups", "format_table", "groups_from_model", "load_groups", "load_run_groups",
    "save_groups", "write_analysis",
]
