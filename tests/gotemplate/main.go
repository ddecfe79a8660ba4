// Command gotemplate renders Lilypad module templates with Go's own text/template, the way
// Lilypad's Go node does (each input JSON-encoded by encoding/json, a `subst` function, the
// builtins), so tests can compare our renderer with it byte for byte.
//
// It reads a JSON array of cases, {"template": "...", "inputs": {"K": "V"}}, on stdin and
// writes a JSON array of results, {"output": "..."} or {"error": "..."}, on stdout.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"text/template"
)

type testCase struct {
	Template string            `json:"template"`
	Inputs   map[string]string `json:"inputs"`
}

type result struct {
	Output *string `json:"output,omitempty"`
	Error  *string `json:"error,omitempty"`
}

// subst JSON-decodes each argument to a string, then formats them with Sprintf.
func subst(format string, encoded ...string) string {
	decoded := make([]any, 0, len(encoded))
	for _, input := range encoded {
		var s string
		if err := json.Unmarshal([]byte(input), &s); err != nil {
			panic("subst: invalid input")
		}
		decoded = append(decoded, s)
	}
	return fmt.Sprintf(format, decoded...)
}

func render(c testCase) result {
	tmpl, err := template.New("module").Funcs(template.FuncMap{"subst": subst}).Parse(c.Template)
	if err != nil {
		message := err.Error()
		return result{Error: &message}
	}
	inputs := make(map[string]string, len(c.Inputs))
	for k, v := range c.Inputs {
		encoded, err := json.Marshal(v)
		if err != nil {
			message := err.Error()
			return result{Error: &message}
		}
		inputs[k] = string(encoded)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, inputs); err != nil {
		message := err.Error()
		return result{Error: &message}
	}
	text := out.String()
	return result{Output: &text}
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, "gotemplate: cannot read cases:", err)
		os.Exit(2)
	}
	results := make([]result, len(cases))
	for i, c := range cases {
		results[i] = render(c)
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "gotemplate: cannot write results:", err)
		os.Exit(2)
	}
}
