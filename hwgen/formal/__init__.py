"""Formal verification with SymbiYosys: interface properties of a generated accelerator (from its
manifest and Verilog ports) and arithmetic proofs of the gateware components (docs/verification.md).
"""

from .components import component_properties
from .delta_whitebox import delta_properties
from .interface import interface_properties
from .runner import Property, PropertyResult, run_properties
from .whitebox import whitebox_properties

__all__ = [
    "Property",
    "PropertyResult",
    "run_properties",
    "interface_properties",
    "component_properties",
    "whitebox_properties",
    "delta_properties",
]
