-- Sending one spooled report: its request(s) to the product's endpoint, retried with
-- backoff and jitter on the statuses the product names, honouring Retry-After up to an
-- hour; a redirect is not followed and keeps the report. Runs inside a coroutine: waiting
-- yields to the loop.
local async = require("phonehome.base.async")
local core = require("phonehome.core")
local delivery = require("phonehome.definition.delivery")
local json = require("phonehome.json")
local log = require("phonehome.base.log")

local M = {}

M.USER_AGENT = "phonehome/" .. core.version

local function member(list, v)
    for _, x in ipairs(list) do if x == v then return true end end
    return false
end

-- send(p, entry, opts) -> "delivered" | "rejected" | "failed" | "stopped", detail.
-- p: { name, def, settings [, read_settings: as the last build read them from the product
-- itself] }; opts: base, scale, stopping (function), sending (function).
function M.send(p, entry, opts)
    local settings = p.read_settings or p.settings
    local url, parts = delivery.target(p.def, settings, opts.base, core.url_parse)
    if not url then
        local err = parts
        log.error({ product = p.name, msg = "cannot send", error = err })
        return "failed", err
    end
    local d = p.def.delivery
    local bodies = delivery.bodies(p.def, entry.body)
    local agent = delivery.user_agent(d, d.user_agent and json.decode(entry.body), M.USER_AGENT)
    local headers = { "Content-Type: application/json" }
    for _, hd in ipairs(d.headers) do headers[#headers + 1] = hd end
    for i, body in ipairs(bodies) do
        local key = #bodies > 1 and (entry.key .. "-" .. i) or entry.key
        local attempt = 0
        while true do
            if opts.stopping() then return "stopped", "shutting down" end
            if not opts.sending() then return "stopped", "turned off" end
            attempt = attempt + 1
            headers[#d.headers + 2] = "Idempotency-Key: " .. key
            local res = async.request({
                url = url, method = p.def.method, body = body, user_agent = agent,
                headers = headers, connect_timeout = d.connect_timeout / 1000,
                timeout = d.timeout / 1000, ca_file = settings.ca_file,
            })
            local fields = { product = p.name, url = delivery.redact(url, parts),
                             attempt = attempt, bytes = #body }
            local retry
            if res.error then
                fields.msg, fields.error = "transfer failed", res.error
                retry = res.error ~= "cancelled"
            elseif res.status >= 200 and res.status < 300 and d.success == "json"
                and select(2, json.decode(res.body)) ~= nil then
                -- the product counts only an answer it can read as sent (Synapse)
                fields.msg, fields.status = "endpoint answered without JSON", res.status
                fields.response = res.body:sub(1, 200)
                retry = false
            elseif res.status >= 200 and res.status < 300 then
                fields.msg, fields.status = "report sent", res.status
                log.info(fields)
                break
            elseif res.status >= 300 and res.status < 400 then
                -- not followed (a redirect could lead plain http anywhere), nor final:
                -- the report stays spooled for the next attempt, as after a 500
                fields.msg, fields.status = "endpoint redirected the report; not following",
                    res.status
                fields.location = res.location
                    and delivery.redact(res.location, core.url_parse(res.location))
                retry = false
            else
                fields.msg, fields.status = "endpoint refused the report", res.status
                fields.response = res.body:sub(1, 200)
                retry = member(d.retry_on, res.status)
                if not retry and res.status < 500 then
                    log.warn(fields)
                    return "rejected", "status " .. res.status
                end
            end
            if not retry or attempt > d.retries then
                log.warn(fields)
                return "failed", res.error or ("status " .. res.status
                    .. (d.success == "json" and res.status < 300 and ", not JSON" or ""))
            end
            local wait = delivery.wait(d, attempt, res.retry_after, math.random)
            fields.retry_in = string.format("%.3fs", wait / opts.scale)
            log.warn(fields)
            async.sleep(wait / opts.scale)
        end
    end
    return "delivered"
end

return M
