// Package frontend holds the built web app (React + Vite, sources in src/).
// `npm run build` writes dist/, which is committed so that `go build` on a
// clean clone needs no Node; `make test` rebuilds it from the sources.
package frontend

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Dist is the built app: index.html, hashed files under assets/, and the
// icons and manifest at the root.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path: fs.Sub cannot fail here
	}
	return sub
}
