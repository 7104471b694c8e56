package server

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestWorldLockIsReleasedOnlyByUnlock pins the rule that the world lock
// is released only through Server.unlock, which publishes the voice
// path's snapshot and queues the configuration file when they changed: a
// raw s.mu.Unlock() elsewhere could leave the voice path routing on an old
// snapshot, or an edit unwritten.
func TestWorldLockIsReleasedOnlyByUnlock(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || !isServerMuUnlock(call.Fun) {
					return true
				}
				checked++
				if fn.Name.Name != "unlock" {
					t.Errorf("%s: %s releases the world lock with a raw Unlock; use s.unlock()", fset.Position(call.Pos()), fn.Name.Name)
				}
				return true
			})
		}
	}
	if checked != 1 {
		t.Errorf("found %d raw releases of the world lock, want exactly the one in unlock", checked)
	}
}

// isServerMuUnlock reports whether e is s.mu.Unlock or x.s.mu.Unlock: the
// server's world lock (the server is s throughout the package).
func isServerMuUnlock(e ast.Expr) bool {
	unlock, ok := e.(*ast.SelectorExpr)
	if !ok || unlock.Sel.Name != "Unlock" {
		return false
	}
	mu, ok := unlock.X.(*ast.SelectorExpr)
	if !ok || mu.Sel.Name != "mu" {
		return false
	}
	switch x := mu.X.(type) {
	case *ast.Ident:
		return x.Name == "s"
	case *ast.SelectorExpr:
		return x.Sel.Name == "s"
	}
	return false
}
