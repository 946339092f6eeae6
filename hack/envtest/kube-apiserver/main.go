// Command kube-apiserver is the Kubernetes API server, built from the
// k8s.io/kubernetes module for envtest (see hack/envtest.sh). It mirrors
// upstream cmd/kube-apiserver/apiserver.go.
package main

import (
	"os"
	_ "time/tzdata" // time zone data for CronJob, as upstream

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
