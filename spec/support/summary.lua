-- busted output handler: the usual terminal report, then "N passed, N failed".
return function(options)
    local busted = require("busted")
    local handler = require("busted.outputHandlers.utfTerminal")(options)
    busted.subscribe({ "suite", "end" }, function()
        local failed = #handler.failures + #handler.errors
        local line = string.format("%d passed, %d failed", #handler.successes, failed)
        if #handler.pendings > 0 then
            line = line .. string.format(", %d skipped", #handler.pendings)
        end
        io.stdout:write("\n", line, "\n")
        io.stdout:flush()
        return nil, true
    end)
    return handler
end
