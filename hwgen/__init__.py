"""hwgen: low-precision recurrent neural networks to verified Verilog accelerators for FPGAs."""

__version__ = "0.1.0"
__all__ = ["__version__"]
