"""contract/serving: the scoring protocols of ``tracklane models serve`` (MLflow's REST scoring
API, the Open Inference Protocol over gRPC), against the model server as a subprocess
(tests/serving_helpers.py ``ModelServer``)."""
