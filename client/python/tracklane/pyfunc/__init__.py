"""The generic python-function flavor: load any model behind one ``predict``, or write your own.

    import tracklane

    model = tracklane.pyfunc.load_model("models:/iris@champion")
    model.predict(df)  # checked against the signature first

    class AddN(tracklane.pyfunc.PythonModel):
        def __init__(self, n):
            self.n = n

        def predict(self, context, model_input, params=None):
            return model_input + self.n

    tracklane.pyfunc.log_model("model", python_model=AddN(5))        # pickled with cloudpickle
    tracklane.pyfunc.log_model("model", python_model="add_n.py")     # "models from code"

Loading runs code: unpickling a model (or running its script) executes whatever it holds. Load
only models you trust.
"""

from tracklane.pyfunc.model import FLAVOR_NAME, PyFuncModel, PythonModel, PythonModelContext, load_model
from tracklane.pyfunc.saving import add_to_model, log_model, save_model

__all__ = [
    "FLAVOR_NAME",
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "add_to_model",
    "load_model",
    "log_model",
    "save_model",
]
