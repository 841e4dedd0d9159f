-- spec/text_spec.lua: owl.text.strip_fences on the shapes models answer in.
local text = require("owl.text")
local strip = text.strip_fences

describe("owl.text.strip_fences", function()
  it("returns the code of a single fenced block", function()
    assert.are.equal("print(1)\nprint(2)\n", strip("```lua\nprint(1)\nprint(2)\n```\n"))
  end)

  it("accepts whitespace around the block and no trailing newline", function()
    assert.are.equal("x = 1\n", strip("\n\n  ```python\nx = 1\n```"))
    assert.are.equal("x = 1\n", strip("```\nx = 1\n```   \n\n"))
  end)

  it("handles tilde fences, whose info string may hold anything", function()
    assert.are.equal("a\n```\nb\n", strip("~~~ md `x`\na\n```\nb\n~~~\n"))
  end)

  it("needs a closing fence of the same character at least as long", function()
    assert.are.equal("```\ninner\n```\n", strip("````markdown\n```\ninner\n```\n````"))
    assert.are.equal("a\n~~~\n", strip("```\na\n~~~\n```"))
  end)

  it("joins the code of several blocks with prose around them by a blank line", function()
    local s = "Here is the parser:\n\n```python\ndef parse():\n    pass\n```\n\nAnd the CLI:\n```python\ndef main():\n    pass\n```\nDone."
    assert.are.equal("def parse():\n    pass\n\ndef main():\n    pass\n", strip(s))
  end)

  it("takes the code out of one block with prose around it", function()
    assert.are.equal("x = 1\n", strip("Sure! Here it is:\n```\nx = 1\n```\nHope this helps."))
  end)

  it("joins two blocks with nothing else around them", function()
    assert.are.equal("a\n\nb\n", strip("```\na\n```\n```\nb\n```\n"))
  end)

  it("leaves text without fences unchanged", function()
    local code = "def f():\n    return '```'  # not a fence: not at the line start\n"
    assert.are.equal(code, strip(code))
    assert.are.equal("", strip(""))
    assert.are.equal("just prose", strip("just prose"))
  end)

  it("does not take inline triple backticks for a fence", function()
    local s = "use ```code``` inline"
    assert.are.equal(s, strip(s))
  end)

  it("takes an unclosed block to the end of the text", function()
    assert.are.equal("x = 1\ny = 2\n", strip("```python\nx = 1\ny = 2\n"))
  end)

  it("cuts a closing fence glued to the last code line", function()
    assert.are.equal("print(1)\n", strip("```lua\nprint(1)```"))
  end)

  it("keeps a lone fence with nothing after it as text", function()
    assert.are.equal("Here you go:\n```", strip("Here you go:\n```"))
  end)

  it("handles CRLF line ends", function()
    assert.are.equal("a\r\nb\r\n", strip("```lua\r\na\r\nb\r\n```\r\n"))
  end)

  it("removes the opening fence's indentation from the code", function()
    assert.are.equal("if x:\n    y()\n", strip("  ```\n  if x:\n      y()\n  ```"))
  end)

  it("raises on a value that is not a string", function()
    assert.has_error(function() strip(nil) end, "owl.text: strip_fences needs a string, got nil")
  end)
end)
