-- SQL sources, read-only: a product's SQLite file (core.sqlite_query, on the libuv thread
-- pool) or its PostgreSQL server (core.pg_query, libpq's asynchronous API on the loop).
-- Queries name their parameters (:now_ms); each engine gets its own placeholders.
local async = require("phonehome.base.async")
local core = require("phonehome.core")

local M = {}

M.MAX_ROWS = 10000

-- Whether a database option names a PostgreSQL server: a URL, or libpq's keywords.
function M.is_postgres(database)
    return type(database) == "table" or database:match("^postgres") ~= nil
        or database:find("=", 1, true) ~= nil
end

-- placeholders(sql, style) -> the SQL with each :name outside quotes and comments
-- replaced by ?N (SQLite) or $N (PostgreSQL), and the names in order; `::` casts stay.
function M.placeholders(sql, style)
    local out, names, index = {}, {}, {}
    local i, n = 1, #sql
    while i <= n do
        local c = sql:sub(i, i)
        local j
        if c == "'" or c == '"' then
            -- to the closing quote; a doubled quote is one quote inside
            j = i
            while true do
                j = sql:find(c, j + 1, true)
                if not j then j = n break end
                if sql:sub(j + 1, j + 1) ~= c then break end
                j = j + 1
            end
            out[#out + 1] = sql:sub(i, j)
        elseif sql:sub(i, i + 1) == "--" then
            j = (sql:find("\n", i, true) or n)
            out[#out + 1] = sql:sub(i, j)
        elseif sql:sub(i, i + 1) == "/*" then
            j = select(2, sql:find("*/", i + 2, true)) or n
            out[#out + 1] = sql:sub(i, j)
        elseif sql:sub(i, i + 1) == "::" then
            j = i + 1
            out[#out + 1] = "::"
        elseif c == ":" and sql:sub(i + 1):match("^[%a_]") then
            local name = sql:match("^[%w_]+", i + 1)
            j = i + #name
            if not index[name] then
                names[#names + 1] = name
                index[name] = #names
            end
            out[#out + 1] = (style == "postgres" and "$" or "?") .. index[name]
        else
            j = i
            out[#out + 1] = c
        end
        i = j + 1
    end
    return table.concat(out), names
end

-- The queries of a spec, sorted by name, with their parameters bound from params (the
-- host's now_s and now_ms, then the source's own); nil, message for a parameter no one
-- gives.
local function prepare(spec, style, now)
    local params = { now_s = math.floor(now), now_ms = math.floor(now * 1000) }
    for k, v in pairs(spec.params or {}) do params[k] = v end
    local names, list = {}, {}
    for name in pairs(spec.queries) do names[#names + 1] = name end
    table.sort(names)
    for i, name in ipairs(names) do
        local q = spec.queries[name]
        if type(q) ~= "string" then return nil, "query '" .. name .. "' must be SQL text" end
        local sql, used = M.placeholders(q, style)
        local values = {}
        for k, p in ipairs(used) do
            if params[p] == nil then
                return nil, "query '" .. name .. "': no value for parameter :" .. p
            end
            values[k] = params[p]
        end
        list[i] = { sql = sql, params = values }
    end
    return list, names
end

-- read(spec, timeout) -> { engine, version, queries = { name = { rows } | { error } } } or
-- nil, message: runs the spec's queries in one read-only session.
function M.read(spec, timeout)
    local pg = M.is_postgres(spec.database)
    local queries, names = prepare(spec, pg and "postgres" or "sqlite", core.time())
    if not queries then return nil, names end
    local opts = { queries = queries, timeout = timeout, max_rows = spec.max_rows or M.MAX_ROWS }
    local res, err
    if pg then
        opts.conninfo, opts.passfile = spec.database, spec.password_file
        res, err = async.await(function(done) return core.pg_query(opts, done) end)
    else
        opts.path = spec.database
        res, err = async.await(function(done) return core.sqlite_query(opts, done) end)
    end
    if not res then return nil, err end
    local out = { engine = pg and "postgresql" or "sqlite", queries = {} }
    if pg then
        local v = res.server_version
        out.version = string.format("%d.%d", v // 10000, v % 10000)
        out.version_num = v
    else
        out.version = res.version
    end
    for i, name in ipairs(names) do out.queries[name] = res.queries[i] end
    return out
end

return M
