"""Model serving: ``tracklane models serve`` and what it is made of.

    payload       MLflow's scoring protocol: request bodies in, ``{"predictions": ...}`` out
    rest          the REST app (starlette): /invocations, /ping, /health, /version, /metrics
    oip_service, tensors  the Open Inference Protocol's GRPCInferenceService; tensors <-> model input
    batching      concurrent requests scored in one model call
    worker        one process serving both protocols; supervisor: N of them on shared ports
    environments  local, uv/virtualenv or conda environments built from the model's requirements
    images        Dockerfiles and images that serve a model (docker or buildah)
    predicting    batch scoring of a file, the server's input handling without the server
    oip/          generated from proto/tracklane/serving/oip only

The serving code talks to a tracking server only through the public Client, like any user.
"""
