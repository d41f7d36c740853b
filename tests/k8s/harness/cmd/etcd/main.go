// Command etcd is etcd's own entrypoint, built as a dependency of our module (go install of
// go.etcd.io/etcd/server/v3 fails on that module's replace directives).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
