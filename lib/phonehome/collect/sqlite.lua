-- The collector's storage in SQLite: one row per stored report, written before the
-- sender is answered; the counts /v1/summary and /metrics give; the rows `phonehome
-- reports` prints, each as one JSON line.
local core = require("phonehome.core")
local json = require("phonehome.json")
local timefmt = require("phonehome.timefmt")

local M = {}

-- WAL with synchronous=NORMAL: a committed row survives the collector being killed;
-- only a crash of the machine may lose the last commits.
local SCHEMA = [[
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY,
    received REAL NOT NULL,
    product TEXT NOT NULL,
    instance TEXT,
    idempotency_key TEXT UNIQUE,
    body TEXT NOT NULL,
    client TEXT,
    user_agent TEXT
);
CREATE INDEX IF NOT EXISTS reports_by_product ON reports (product, id);
]]

local Db = {}
Db.__index = Db

-- open(path) -> db, or nil, message naming the file.
function M.open(path)
    local handle, err = core.db_open(path)
    if not handle then return nil, err end
    local ok
    ok, err = handle:exec(SCHEMA)
    if not ok then
        handle:close()
        return nil, path .. ": " .. err
    end
    return setmetatable({ handle = handle, path = path }, Db)
end

-- insert(row) -> "stored", id | "duplicate" | nil, message. A row whose
-- idempotency key was stored before is not stored again.
function Db:insert(r)
    local changes, id = self.handle:run(
        "INSERT INTO reports (received, product, instance, idempotency_key, body, client, "
            .. "user_agent) "
            .. "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
        r.received, r.product, r.instance, r.idempotency_key, r.body, r.client, r.user_agent)
    if not changes then return nil, id end
    if changes == 0 then return "duplicate" end
    return "stored", id
end

-- summary() -> { { product, reports, instances, first, last }, ... } by product.
function Db:summary()
    return self.handle:rows("SELECT product, count(*) AS reports, "
        .. "count(DISTINCT instance) AS instances, "
        .. "min(received) AS first, max(received) AS last FROM reports "
        .. "GROUP BY product ORDER BY product")
end

-- list(product, last) -> the stored rows, oldest first; the last N when last is given.
function Db:list(product, last)
    local rows, err = self.handle:rows("SELECT * FROM (SELECT id, received, product, instance, "
        .. "idempotency_key, body, client, user_agent FROM reports "
        .. "WHERE (?1 IS NULL OR product = ?1) ORDER BY id DESC LIMIT ?2) ORDER BY id",
        product, last or -1)
    return rows, err
end

function Db:close()
    self.handle:close()
end

-- A stored report as one JSON line; the body is JSON already and goes in as received.
function M.line(r)
    local head = json.encode({ id = r.id, received = timefmt.iso8601(r.received, 3),
                               product = r.product, instance = r.instance or json.null,
                               idempotency_key = r.idempotency_key or json.null,
                               client = r.client, user_agent = r.user_agent })
    return head:sub(1, -2) .. ',"report":' .. r.body:gsub("[\r\n]+", "") .. "}"
end

return M
