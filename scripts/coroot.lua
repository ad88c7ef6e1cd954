-- Coroot anonymous usage statistics: one report at start, then every hour.
-- What Coroot learns from its own database and Prometheus is given as settings.

return {
    name = "coroot",
    version = "1.0.0",
    description = "Anonymous usage statistics of a Coroot server: its integrations, the stack "
        .. "it observes, the size of the infrastructure, how the UI is used, and performance.",
    endpoint = "https://coroot.com/ce/usage-statistics",
    method = "POST",
    delivery = { retries = 0, timeout = "60s" },
    schedule = { first = "1h", interval = "1h", at_start = true, anchor = "previous" },
    identity = { file = "instance.uuid", field = "instance.uuid" },
    optout = {
        default = "on",
        flags = { { name = "--disable-usage-statistics" } },
        env = { { name = "DISABLE_USAGE_STATISTICS",
                  off = { "1", "true", "t", "TRUE", "True", "T" } } },
        settings = { { name = "disable_usage_statistics", off = { true } } },
    },
    disclosure = {
        on = "Coroot collects anonymous usage statistics to improve the product. Turn this off "
            .. "with --disable-usage-statistics or DISABLE_USAGE_STATISTICS=true. "
            .. "See https://docs.coroot.com/configuration/usage-statistics",
        off = "Coroot anonymous usage statistics are disabled: nothing is sent.",
    },
    settings = {
        { name = "disable_usage_statistics", type = "bool", default = false,
          description = "Coroot's own config switch: true turns usage statistics off." },
    },
    fields = {
        { name = "instance", type = "object", description = "This Coroot installation.",
          fields = {
              { name = "uuid", type = "string",
                description = "Random id made at first start and kept in <data-dir>/instance.uuid.",
                value = function(ctx) return ctx.instance_id end },
              { name = "version", type = "string", setting = { default = "0.20.0" },
                description = "The Coroot version." },
              { name = "database_type", type = "string", setting = { default = "sqlite" },
                description = "The database Coroot keeps its configuration in." },
          } },
        { name = "integration", type = "object", description = "What Coroot is connected to.",
          fields = {
              { name = "prometheus", type = "bool", setting = { default = false },
                description = "Whether a Prometheus integration is configured." },
              { name = "node_agent", type = "bool", setting = { default = false },
                description = "Whether metrics from node-agent have been seen." },
              { name = "kube_state_metrics", type = "bool", setting = { default = false },
                description = "Whether metrics from kube-state-metrics have been seen." },
              { name = "inspection_overrides", type = "map", setting = { default = {} },
                description = "Overridden inspection thresholds, per inspection.",
                values = { type = "object", fields = {
                    { name = "project_level", type = "int", description = "Overrides for a "
                        .. "whole project." },
                    { name = "application_level", type = "int", description = "Overrides for "
                        .. "one application." },
                } } },
              { name = "application_categories", type = "int", setting = { default = 0 },
                description = "Number of configured application categories." },
              { name = "alerting_integrations", type = "array", items = "string",
                setting = { default = {} }, description = "Kinds of alerting integration "
                    .. "configured." },
              { name = "cloud_costs", type = "bool", setting = { default = false },
                description = "Whether prices are known for the cloud in use." },
              { name = "clickhouse", type = "bool", setting = { default = false },
                description = "Whether a ClickHouse integration is configured." },
              { name = "tracing", type = "bool", setting = { default = false },
                description = "Whether distributed tracing is on." },
              { name = "logs", type = "bool", setting = { default = false },
                description = "Whether log monitoring is on." },
              { name = "profiles", type = "bool", setting = { default = false },
                description = "Whether continuous profiling is on." },
          } },
        { name = "stack", type = "object", description = "Technologies seen in the monitored "
            .. "systems.",
          fields = {
              { name = "clouds", type = "array", items = "string", setting = { default = {} },
                description = "Cloud providers, from the node_cloud_info metric." },
              { name = "services", type = "array", items = "string", setting = { default = {} },
                description = "Kinds of service, from the container_application_type metric." },
              { name = "instrumented_service", type = "array", items = "string",
                setting = { default = {} },
                description = "Services watched by their own exporters (pg-agent, "
                    .. "redis_exporter, ...)." },
          } },
        { name = "infra", type = "object", description = "Size of the monitored infrastructure.",
          fields = {
              { name = "projects", type = "int", setting = { default = 0 },
                description = "Configured projects." },
              { name = "applications", type = "int", setting = { default = 0 },
                description = "Applications in all projects." },
              { name = "nodes", type = "int", setting = { default = 0 }, description = "Nodes." },
              { name = "instances", type = "int", setting = { default = 0 },
                description = "Application instances (containers)." },
              { name = "deployments", type = "int", setting = { default = 0 },
                description = "Application rollouts." },
              { name = "deployment_summaries", type = "map", values = "int", setting = { default = {} },
                description = "Notable changes seen in deployments, counted by kind." },
          } },
        { name = "ux", type = "object", description = "How the web interface is used.",
          fields = {
              { name = "users_by_screen_size", type = "map", values = "int", setting = { default = {} },
                description = "Browsers counted by display breakpoint (xs ... xl)." },
              { name = "users", type = "array", items = "string", setting = { default = {} },
                description = "Random ids of the browsers that used the UI." },
              { name = "page_views", type = "map", values = "int", setting = { default = {} },
                description = "Page views counted by route." },
              { name = "world_load_time_avg", type = "number", unit = "seconds",
                setting = { default = 0 },
                description = "Average time to load telemetry from the Prometheus cache." },
              { name = "audit_time_avg", type = "number", unit = "seconds", setting = { default = 0 },
                description = "Average time to audit telemetry." },
              { name = "sent_notifications", type = "map", values = "int", setting = { default = {} },
                description = "Notifications sent, counted by destination." },
          } },
        { name = "performance", type = "object", description = "How Coroot itself performs.",
          fields = {
              { name = "constructor", type = "object",
                description = "Building the model from the Prometheus cache.",
                fields = {
                    { name = "stages", type = "map", values = "number", unit = "seconds",
                      setting = { default = {} },
                      description = "Longest time of each loading and processing stage." },
                    { name = "queries", type = "map", setting = { default = {} },
                      description = "Each Prometheus query: whether it failed, its latency and "
                          .. "result size.",
                      values = { type = "object", fields = {
                          { name = "failed", type = "bool", description = "Whether the query "
                              .. "failed." },
                          { name = "query_time", type = "number", unit = "seconds",
                            description = "How long the query took." },
                          { name = "metrics_count", type = "int", description = "Series returned." },
                      } } },
                } },
              { name = "cpu_usage", type = "array", items = "number", unit = "cores",
                description = "CPU used by the server process, one sample a minute since the last "
                    .. "report; the first minute after start has none.",
                value = function() return {} end },
              { name = "memory_usage", type = "array", items = "int", unit = "bytes",
                description = "Resident memory of the server process, sampled since the last "
                    .. "report.",
                value = function(ctx) return { ctx.process.rss } end },
          } },
        { name = "profile", type = "object", description = "Profiles of the server process.",
          fields = {
              { name = "from", type = "int", unit = "seconds since the epoch",
                description = "Start of the profiled window: the previous report, or process start.",
                value = function(ctx)
                    return math.floor(ctx.last_sent or ctx.process.start_time)
                end },
              { name = "to", type = "int", unit = "seconds since the epoch",
                description = "End of the profiled window: now.",
                value = function(ctx) return math.floor(ctx.now) end },
              { name = "cpu", type = "string", null = true,
                description = "CPU profile, base64 pprof; null where no profiler is attached.",
                setting = { } },
              { name = "memory", type = "string", null = true,
                description = "Memory profile, base64 pprof; null where no profiler is attached.",
                setting = { } },
          } },
    },
}
