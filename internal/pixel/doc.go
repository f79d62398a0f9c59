// Package pixel parses the few SEMOSS "pixel" expressions jobstream runs.
//
// An expression is one or more pixels separated by ";" (a trailing ";" is
// optional). Pixel names are matched case-insensitively; argument names are
// not. The accepted pixels are:
//
//	LLM(engine="<id>", command="<encode>text</encode>", context=["<encode>..</encode>"],
//	    useHistory=true, paramValues=[{...}], roomId="<encode>..</encode>")
//	META | true
//	StopPixelExecution(id=["<jobId>", ...])
//
// LLM arguments come in any order and all are optional but command, which
// may be left out when paramValues holds full_prompt or messages (as the
// Python SDK's chat integrations send); insightId and projectId are
// accepted and ignored, image and url (multimodal input) are refused with a
// clear error, any other name is an error. A value may be a string in
// double or single quotes, a bare word (sim, a UUID, true), an <encode>
// block, or a list; a one-element list stands for its element, as semoss-ui
// writes engine=["id"]. context may be a list, joined with "\n".
// paramValues is an object, or a list holding one, written as JSON or as a
// Python dict literal ('single quotes', True, False, None, trailing
// commas); Parse returns its members as JSON.
//
// The body of an <encode>...</encode> block is literal text: it may hold
// quotes, brackets, ";" and newlines, and ends at the first </encode>. SEMOSS
// wraps user text in these blocks, with or without surrounding quotes.
// Outside them, quoted strings take the backslash escapes of JSON and Python
// (\" \' \\ \n \t \uHHHH ...); an unknown escape is kept as written.
//
// Parse returns a *SyntaxError for malformed input (callers add the
// operationType "INVALID_SYNTAX"), an error wrapping ErrUnsupported for a
// well-formed pixel it doesn't run, such as Foo(1), and a plain error for bad
// arguments to a known pixel. Expressions longer than MaxExprLen, holding
// more than MaxPixels pixels, nested deeper than MaxDepth, or holding invalid
// UTF-8 or NUL characters (which PostgreSQL can't store) are rejected.
package pixel
