-- luacheck: owl's Lua runs on 5.1 through 5.4 and LuaJIT
std = "lua51+lua52+lua53+lua54+luajit"
max_line_length = 140
files["spec"] = { std = "+busted" }
exclude_files = { "build" }
