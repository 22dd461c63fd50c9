"""Events wired by parameter name: a handler's inputs are the controls named like its parameters."""
from __future__ import annotations

import inspect


def inputs_for(fn, controls: dict) -> list:
    """`fn`'s inputs, in the order of its parameters, from controls named like them.

    The API's parameter names are fn's; a control without a parameter, or a parameter without a
    control, is a wiring mistake and raises here, when the demo is built.
    """
    names = [n for n in inspect.signature(fn).parameters if n != "request"]   # gr.Request: Gradio passes it
    missing, extra = [n for n in names if n not in controls], [n for n in controls if n not in names]
    if missing or extra:
        raise TypeError(f"{fn.__name__}: parameters without a control: {missing}; controls without a parameter: "
                        f"{extra}")
    return [controls[name] for name in names]
