-- luacheck: Lua 5.4, the library and scripts declare no globals; specs run under busted.
std = "lua54"
max_line_length = 100
files["spec"] = { std = "+busted", max_line_length = 100 }
files[".busted"] = { std = "+busted" }
