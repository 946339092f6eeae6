// Command etcd is the etcd server, built from the go.etcd.io/etcd/server/v3
// module for envtest (see hack/envtest.sh). It mirrors upstream server/main.go.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
