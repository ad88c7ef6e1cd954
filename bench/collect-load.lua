-- wrk script for the collector load run: PUTs a Synapse report to Synapse's own route,
-- each request with an Idempotency-Key of its own, so that every one is stored.
-- luacheck: globals wrk setup init request id
local counter = 0
local thread_id = 0
local threads = 0

function setup(thread)
    threads = threads + 1
    thread:set("id", threads)
end

function init()
    thread_id = id or 0
    local f = assert(io.open(os.getenv("PHONEHOME_BENCH_BODY")))
    wrk.body = f:read("a")
    f:close()
    wrk.method = "PUT"
    wrk.headers["Content-Type"] = "application/json"
end

function request()
    counter = counter + 1
    wrk.headers["Idempotency-Key"] = string.format("bench-%d-%d", thread_id, counter)
    return wrk.format(nil, "/report-usage-stats/push")
end
