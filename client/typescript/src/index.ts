// Public API of @tracklane/client. Generated messages and stubs: "@tracklane/client/gen/tracklane/v1/<file>".
export { DEFAULT_ADDRESS, TracklaneClient, type ClientConfig } from "./client.js";
export {
  AlreadyExistsError,
  FailedPreconditionError,
  fromServiceError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  TracklaneError,
  UnauthenticatedError,
  UnavailableError,
} from "./errors.js";
export { MetricStreamer, type MetricStreamerOptions, type MetricStreamerStats } from "./streamer.js";
export type { FileInfo } from "./gen/tracklane/v1/artifacts.js";
export type { Tag } from "./gen/tracklane/v1/common.js";
export type { ModelVersion, RegisteredModel } from "./gen/tracklane/v1/registry.js";
export { RunStatus, type Experiment, type Metric, type MetricSeries, type Param, type Run, type RunInfo } from "./gen/tracklane/v1/tracking.js";
