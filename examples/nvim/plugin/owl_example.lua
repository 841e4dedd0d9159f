-- examples/nvim: a small plugin on owl.nvim. With this folder and owl on
-- the runtime path (owl's checkout after `make nvim`):
--   :Owl <problem>   runs the flow into a scratch buffer
--   :OwlStop         cancels it
-- luacheck: globals vim
vim.api.nvim_create_user_command("Owl", function(args) require("owl_example").run(args.args) end,
  { nargs = "+", desc = "owl: run the orchestrator-workers flow on a problem" })
vim.api.nvim_create_user_command("OwlStop", function() require("owl_example").stop() end,
  { desc = "owl: cancel the run in progress" })
