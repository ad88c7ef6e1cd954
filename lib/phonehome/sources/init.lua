-- sources/: the host's side of what a script reads from the product it reports on. A
-- source's options are computed in the product's sandbox (sandbox/sources.lua); here they
-- are read, asynchronously on the loop, each within its timeout and the report's budget:
-- SQL (sources/sql.lua), HTTP and Prometheus through the libcurl client, files and config
-- files. What comes back is plain data for the sandbox to parse.
local async = require("phonehome.base.async")
local core = require("phonehome.core")
local defsources = require("phonehome.definition.sources")
local sql = require("phonehome.sources.sql")

local M = {}

local ENOENT = 2

-- The credentials of an auth option, as core.http takes them: { basic = { user,
-- password | password_file } }, { bearer = token } or { bearer_file = path }; nil,
-- message when a file cannot be read. A file's trailing newline is not part of it.
local function credentials(auth, opts)
    local function secret(v, path)
        if v ~= nil then return v end
        local text, err = core.readfile(path, { max = 65536 })
        if not text then return nil, err end
        return (text:gsub("[\r\n]+$", ""))
    end
    local err
    if type(auth.basic) == "table" then
        opts.username = tostring(auth.basic.user or "")
        opts.password, err = secret(auth.basic.password, auth.basic.password_file)
        return opts.password ~= nil, err
    end
    if auth.bearer or auth.bearer_file then
        opts.bearer, err = secret(auth.bearer, auth.bearer_file)
        return opts.bearer ~= nil, err
    end
    return false, "auth must have basic = { user, password | password_file }, bearer or "
        .. "bearer_file"
end

local function http(spec, timeout)
    local headers = {}
    for k, v in pairs(spec.headers or {}) do
        headers[#headers + 1] = math.type(k) == "integer" and v or (k .. ": " .. tostring(v))
    end
    local opts = { url = spec.url, method = spec.method or "GET", headers = headers,
                   timeout = timeout, connect_timeout = timeout, ca_file = spec.ca_file }
    if spec.auth then
        local ok, err = credentials(spec.auth, opts)
        if not ok then return nil, "auth: " .. tostring(err) end
    end
    local body = spec.body
    if spec.kind == "prometheus" then
        headers[#headers + 1] = "Accept: text/plain;version=0.0.4"
    else
        headers[#headers + 1] = "Accept: application/json"
        if type(body) == "table" then
            body = require("cjson").encode(body)
            headers[#headers + 1] = "Content-Type: application/json"
        end
    end
    local max = spec.max_bytes or defsources.DEFAULT_MAX_BYTES
    opts.body, opts.max_body = body, max
    local res = async.request(opts)
    local shown = defsources.redact_url(spec.url)
    if res.error then return nil, shown .. ": " .. res.error end
    if res.status < 200 or res.status > 299 then
        return nil, shown .. ": HTTP " .. res.status
    end
    if res.bytes > max then
        return nil, shown .. ": answer larger than " .. max .. " bytes"
    end
    return res.body, nil, { url = shown, format = spec.format }
end

local function file(spec)
    local max = spec.max_bytes or defsources.DEFAULT_MAX_BYTES
    local text, err, errno
    if spec.offset or spec.length then
        text, err, errno = core.readfile(spec.path, { offset = spec.offset or 0,
                                                     length = spec.length or max })
    else
        text, err, errno = core.readfile(spec.path, { max = max })
    end
    local extra = { path = spec.path, format = spec.format or "text" }
    -- an optional file that does not exist is read as absent, not as a failure
    if not text and spec.optional and errno == ENOENT then
        extra.missing = true
        return "", nil, extra
    end
    if not text then return nil, err end
    return text, nil, extra
end

-- A config read in layers (path a list): each path in order, a directory standing for
-- its files named *.KIND in byte order (as Synapse reads a --config-path directory); the
-- texts in that order, merged in the sandbox. The size cap holds for them all together.
local function layered(spec)
    local files = {}
    for _, path in ipairs(spec.path) do
        if core.isdir(path) then
            local names, err = core.listdir(path)
            if not names then return nil, err end
            table.sort(names)
            for _, n in ipairs(names) do
                if n:sub(-#spec.kind - 1) == "." .. spec.kind then
                    files[#files + 1] = path:gsub("/+$", "") .. "/" .. n
                end
            end
        else
            files[#files + 1] = path
        end
    end
    local texts, left = {}, spec.max_bytes or defsources.DEFAULT_MAX_BYTES
    for i, path in ipairs(files) do
        local text, err = file({ path = path, max_bytes = left })
        if not text then return nil, err end
        left = left - #text
        texts[i] = text
    end
    return texts, nil, { paths = files, format = "layers" }
end

local function config(spec)
    if type(spec.path) == "table" then return layered(spec) end
    return file(spec)
end

local readers = {
    sql = function(spec, timeout) return sql.read(spec, timeout) end,
    http = http,
    prometheus = http,
    file = file,
}
for kind in pairs(defsources.config_kinds) do readers[kind] = config end

-- What a source reads, as it may be shown: credentials masked.
function M.target(spec)
    local t = spec.url or spec.path or spec.database
    if type(t) == "string" then return defsources.redact_url(t) end
    if type(t) == "table" and t[1] then return table.concat(t, " + ") end
    if type(t) == "table" then
        return "postgresql " .. tostring(t.host or "(default host)") .. ":"
            .. tostring(t.port or 5432) .. "/" .. tostring(t.dbname or t.database or "")
    end
    return "?"
end

-- read(spec, budget_left) -> { ok, value | error, ms, ... }: one source, in a coroutine.
function M.read(spec, budget_left)
    local timeout = math.max(0.001, math.min(spec.timeout / 1000, budget_left))
    local started = core.monotonic()
    local ok, value, err, extra = pcall(readers[spec.kind], spec, timeout)
    local r = extra or {}
    r.kind, r.target = spec.kind, M.target(spec)
    r.ms = (core.monotonic() - started) * 1000
    if not ok then
        r.ok, r.error = false, tostring(value)
    elseif value == nil then
        r.ok, r.error = false, tostring(err)
    else
        r.ok, r.value = true, value
    end
    return r
end

-- read_all(specs, budget_left) -> { name = result }: the sources at once, waiting for
-- the last (in a coroutine).
function M.read_all(specs, budget_left)
    local out, left, waiting = {}, #specs, false
    local co = coroutine.running()
    for _, spec in ipairs(specs) do
        async.spawn(function()
            out[spec.name] = M.read(spec, budget_left)
            left = left - 1
            if left == 0 and waiting then async.resume(co) end
        end)
    end
    if left > 0 then
        waiting = true
        coroutine.yield()
    end
    return out
end

return M
