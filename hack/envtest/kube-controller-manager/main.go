// Command kube-controller-manager is the Kubernetes controller manager, built
// from the k8s.io/kubernetes module (see hack/envtest.sh). envtest itself runs
// no controller manager; the controllers suite starts this one with only the
// garbage collector, so that it can watch owner references do their work.
// It mirrors upstream cmd/kube-controller-manager/controller-manager.go.
package main

import (
	"os"
	_ "time/tzdata" // time zone data for CronJob, as upstream

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
