"""Exceptions raised by rerinv; each message says what was wrong and how to fix it."""


class RerinvError(Exception):
    """Base class of every rerinv error."""


class InputError(RerinvError, ValueError):
    """A matrix, vector or value given by the user is unusable."""


class UnstableMatrixError(InputError):
    """The mapped matrix has an eigenvalue with non-positive real part: the loop would rail."""


class ConfigError(RerinvError, ValueError):
    """A configuration file or ``--set`` override names an unknown key or a bad value."""


class NgspiceMissingError(RerinvError, RuntimeError):
    """The ngspice shared library cannot be found or loaded."""


class SimulationError(RerinvError, RuntimeError):
    """ngspice rejected the netlist or the analysis did not converge."""


class SaturationError(RerinvError, RuntimeError):
    """One or more op-amp outputs sit at the rails: the circuit did not produce a solution.

    Attributes
    ----------
    nodes : list of str
        The railed output nodes.
    values : numpy.ndarray
        Their voltages (V).
    """

    def __init__(self, message: str, nodes=(), values=()):
        super().__init__(message)
        self.nodes = list(nodes)
        self.values = values

    def __reduce__(self):  # pickled across engine worker processes with its nodes and values
        return type(self), (str(self), self.nodes, self.values)


class UnsupportedByEngineError(RerinvError, NotImplementedError):
    """The chosen engine cannot model this circuit faithfully (e.g. rails it would hit)."""


def not_a_regular_file(path) -> str | None:
    """Why ``path`` (a :class:`pathlib.Path`) must not be read, or None: an existing path that
    is not a regular file (a folder, FIFO or device) is refused before any read, since
    reading a FIFO blocks until someone writes to it."""
    if path.exists() and not path.is_file():
        return f"{path} is not a regular file (a folder, FIFO or device)"
    return None
