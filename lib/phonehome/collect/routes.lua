-- The routes of `phonehome collect`: each report parsed as strict JSON, checked against
-- the definition that built it, and stored, the very bytes that were checked, once per
-- Idempotency-Key before it is answered; liveness, summary and Prometheus metrics.
local core = require("phonehome.core")
local definition = require("phonehome.definition")
local ga4 = require("phonehome.base.ga4")
local identity = require("phonehome.definition.identity")
local json = require("phonehome.json")
local log = require("phonehome.base.log")
local timefmt = require("phonehome.timefmt")

local M = {}

local JSON = "application/json"
local ARRAY = getmetatable(json.array())

local function reply(status, body)
    return status, json.encode(body) .. "\n", JSON
end

local function summary_body(rows)
    local products = {}
    for _, r in ipairs(rows) do
        products[r.product] = { reports = r.reports, instances = r.instances,
                                first_received = timefmt.iso8601(r.first, 3),
                                last_received = timefmt.iso8601(r.last, 3) }
    end
    return { products = products }
end

local function metrics_text(rows)
    local out = {}
    local function family(name, kind, help, field)
        out[#out + 1] = "# HELP " .. name .. " " .. help
        out[#out + 1] = "# TYPE " .. name .. " " .. kind
        for _, r in ipairs(rows) do
            out[#out + 1] = string.format('%s{product="%s"} %s', name, r.product,
                                          json.number(r[field]))
        end
    end
    family("phonehome_reports_total", "counter", "Reports stored, by product.", "reports")
    family("phonehome_instances", "gauge", "Distinct instances that sent a report, by product.",
           "instances")
    family("phonehome_last_received_timestamp_seconds", "gauge",
           "When the last report of each product was received.", "last")
    return table.concat(out, "\n") .. "\n"
end

-- Stores one report for a product: 201 stored, 200 a repeat, 4xx what is wrong.
local function store(opts, req, name, check_ga4)
    local def = opts.products[name]
    if not def then return reply(404, { error = "unknown product '" .. name .. "'" }) end
    if req.too_large then
        return reply(413, { error = "body larger than " .. opts.max_body .. " bytes" })
    end
    local ctype = (req.headers["content-type"] or ""):match("^%s*([^;%s]+)")
    if not ctype or ctype:lower() ~= JSON then
        return reply(415, { error = "Content-Type must be application/json" })
    end
    local key = req.headers["idempotency-key"]
    if key and (#key > 200 or key:find("%c")) then
        return reply(400, { error = "Idempotency-Key must be at most 200 printable "
            .. "characters" })
    end
    -- strict RFC 8259, integers exact: what is checked is what is stored, req.body
    local body, err = core.json_strict(req.body, json.null, ARRAY)
    if body == nil then return reply(400, { error = "body is not JSON: " .. err }) end
    if type(body) ~= "table" or body == json.null or json.is_array(body) then
        return reply(400, { error = "body must be a JSON object" })
    end
    local reasons = check_ga4 and ga4.check(body, req.body) or {}
    for _, r in ipairs(definition.validate(def, body)) do reasons[#reasons + 1] = r end
    if #reasons > 0 then
        return reply(422, { error = "report does not match the " .. name .. " definition",
                            reasons = reasons })
    end
    local row = {
        received = core.time(), product = name, body = req.body, idempotency_key = key,
        instance = identity.of_report(def, body),
        client = opts.store_client and req.client or nil,
        user_agent = opts.store_client and req.headers["user-agent"] or nil,
    }
    local result, id = opts.db:insert(row)
    if not result then
        log.error({ product = name, msg = "cannot store report", error = id })
        return reply(503, { error = "cannot store the report now" })
    end
    if result == "duplicate" then return reply(200, { stored = false, duplicate = true }) end
    row.id = id
    if opts.on_store then opts.on_store(row) end
    return reply(201, { stored = true, id = id })
end

-- The answer to one request: its route, and the checks of method and product.
local function route(opts, req)
    local path = req.path
    local product = path:match("^/v1/report/([^/]+)$")
    local function only(...)
        for _, m in ipairs({ ... }) do if req.method == m then return true end end
        return false
    end
    if product then
        req.product = product
        if not only("POST", "PUT") then return reply(405, { error = "use POST or PUT" }) end
        return store(opts, req, product)
    elseif path == "/report-usage-stats/push" then
        req.product = "synapse"
        if not only("PUT") then return reply(405, { error = "use PUT" }) end
        return store(opts, req, "synapse")
    elseif path == "/mp/collect" then
        if not only("POST") then return reply(405, { error = "use POST" }) end
        req.product = opts.ga4[req.query.measurement_id or ""]
        if not req.product then return reply(404, { error = "unknown measurement_id" }) end
        return store(opts, req, req.product, true)
    elseif path == "/healthz" then
        if not only("GET", "HEAD") then return reply(405, { error = "use GET" }) end
        return reply(200, { status = "ok" })
    elseif path == "/v1/summary" or path == "/metrics" then
        if not only("GET", "HEAD") then return reply(405, { error = "use GET" }) end
        local rows, err = opts.db:summary()
        if not rows then
            log.error({ msg = "cannot read the database", error = err })
            return reply(503, { error = "cannot read the database now" })
        end
        if path == "/metrics" then
            return 200, metrics_text(rows), "text/plain; version=0.0.4"
        end
        return reply(200, summary_body(rows))
    end
    return reply(404, { error = "no such path" })
end

-- new(opts) -> handler(request) -> status, body, content type.
-- opts: db (collect.sqlite), products (name -> definition, plain data), ga4 (measurement
-- id -> product name), store_client (keep client address and user agent), on_store
-- (called with each row stored).
function M.new(opts)
    return function(req)
        local status, body, ctype = route(opts, req)
        -- the query string is never logged: it holds GA4's api_secret
        log.info({ msg = "request", method = req.method, path = req.path, status = status,
                   product = req.product, bytes = #req.body })
        return status, body, ctype
    end
end

return M
