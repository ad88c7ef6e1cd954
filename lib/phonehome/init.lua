-- phonehome's Lua library. The modules at this level are the ones product scripts may
-- `require` (read-only views, inside their sandbox); everything else lives in a
-- sub-package by role:
--   base/        shared basics: the log, waiting on the loop, the GA4 protocol's limits
--   definition/  what a script declares, one module per section: its check and meaning
--   sandbox/     what runs inside a product's own Lua state, and the handle to it
--   daemon/      `phonehome run`: products on their schedules, reload, spool, sending,
--                the data directory
--   sources/     what a script reads from its product (so far: Prometheus text, TOML)
--   collect/     `phonehome collect`: routes, storage
--   cmd/         one module per command, with its options and help; cli.lua dispatches
-- The C primitives are one module, phonehome.core (runtime/).
local M = {}

-- The library of product scripts: pure Lua, no I/O.
M.script_modules = {
    "phonehome.json",       -- JSON encoding with exact integers and declared key order
    "phonehome.duration",   -- "300s", "5m", "3h" to milliseconds and back
    "phonehome.timefmt",    -- ISO 8601 times
    "phonehome.stats",      -- min, max, mean, median and mode of samples
    "phonehome.fields",     -- field constructors: one line per field, its line known
}

return M
