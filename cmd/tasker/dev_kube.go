package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
)

// devNamespace is the Kubernetes namespace of sample objects that name none.
const devNamespace = "default"

// devFieldOwner is the field manager of what `tasker dev` applies.
const devFieldOwner = "tasker-dev"

// devApplied are the samples that were applied.
type devApplied struct {
	templates []*workflowsv1alpha1.TaskTemplate
	pools     []*workflowsv1alpha1.WorkerPool
}

// kubeClient returns an admin client of the local API server.
func (s *devSystem) kubeClient() (client.Client, error) {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(workflowsv1alpha1.AddToScheme(scheme))
	return client.New(s.kube.Config, client.Options{Scheme: scheme})
}

// applySamples server-side applies every object of the kustomization in
// dir (its plain resource files), and creates the database Secret that
// each WorkerPool names, holding the local database's URL.
func (s *devSystem) applySamples(ctx context.Context, dir string) (*devApplied, error) {
	begin := time.Now()
	c, err := s.kubeClient()
	if err != nil {
		return nil, err
	}
	objects, err := readKustomization(dir)
	if err != nil {
		return nil, err
	}
	applied := &devApplied{}
	for _, obj := range objects {
		if obj.GetNamespace() == "" {
			obj.SetNamespace(devNamespace)
		}
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner(devFieldOwner), client.ForceOwnership); err != nil {
			return nil, fmt.Errorf("applying %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
		key := client.ObjectKeyFromObject(obj)
		switch obj.GroupVersionKind().GroupKind() {
		case workflowsv1alpha1.GroupVersion.WithKind("TaskTemplate").GroupKind():
			template := &workflowsv1alpha1.TaskTemplate{}
			if err := c.Get(ctx, key, template); err != nil {
				return nil, err
			}
			applied.templates = append(applied.templates, template)
		case workflowsv1alpha1.GroupVersion.WithKind("WorkerPool").GroupKind():
			pool := &workflowsv1alpha1.WorkerPool{}
			if err := c.Get(ctx, key, pool); err != nil {
				return nil, err
			}
			if err := s.applyPoolSecret(ctx, c, pool); err != nil {
				return nil, err
			}
			applied.pools = append(applied.pools, pool)
		}
	}
	s.sayf(begin, "applied %d TaskTemplates and %d WorkerPool(s) from %s", len(applied.templates), len(applied.pools), dir)
	return applied, nil
}

// applyPoolSecret creates (or updates) the Secret a WorkerPool takes its
// database URL from, with the local database's URL under the pool's key.
func (s *devSystem) applyPoolSecret(ctx context.Context, c client.Client, pool *workflowsv1alpha1.WorkerPool) error {
	ref := pool.Spec.Database.SecretRef
	key := ref.Key
	if key == "" {
		key = "url" // the API's default
	}
	secret := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata":   map[string]any{"name": ref.Name, "namespace": pool.Namespace},
		"stringData": map[string]any{key: s.dbURL},
	}}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(secret), client.FieldOwner(devFieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("creating Secret %s/%s for WorkerPool %s: %w", pool.Namespace, ref.Name, pool.Name, err)
	}
	return nil
}

// readKustomization reads the resources a kustomization.yaml lists. Only
// plain files are supported: `tasker dev` does not run kustomize.
func readKustomization(dir string) ([]*unstructured.Unstructured, error) {
	path := filepath.Join(dir, "kustomization.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(k.Resources) == 0 {
		return nil, fmt.Errorf("%s lists no resources", path)
	}
	var objects []*unstructured.Unstructured
	for _, res := range k.Resources {
		file := filepath.Join(dir, res)
		if info, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("%s: resource %s: %w", path, res, err)
		} else if info.IsDir() {
			return nil, fmt.Errorf("%s: resource %s is a directory; tasker dev applies plain files only", path, res)
		}
		objs, err := readObjects(file)
		if err != nil {
			return nil, err
		}
		objects = append(objects, objs...)
	}
	return objects, nil
}

// readObjects decodes every YAML document of a file.
func readObjects(file string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var objects []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		err := dec.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return objects, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if len(obj.Object) == 0 {
			continue // an empty document
		}
		if obj.GetKind() == "" || obj.GetName() == "" {
			return nil, fmt.Errorf("%s: a document without kind or metadata.name", file)
		}
		objects = append(objects, obj)
	}
}

// waitTemplatesReady waits until every TaskTemplate's Ready condition is
// True for its current generation, printing each as it gets there. A
// template the controller refused (Ready False for a reason that waiting
// does not change) is an error with the condition's message.
func (s *devSystem) waitTemplatesReady(ctx context.Context, templates []*workflowsv1alpha1.TaskTemplate) error {
	begin := time.Now()
	c, err := s.kubeClient()
	if err != nil {
		return err
	}
	for _, t := range templates {
		key := client.ObjectKeyFromObject(t)
		err := waitFor(ctx, func() error {
			current := &workflowsv1alpha1.TaskTemplate{}
			if err := c.Get(ctx, key, current); err != nil {
				return err
			}
			cond := apimeta.FindStatusCondition(current.Status.Conditions, "Ready")
			switch {
			case cond == nil || cond.ObservedGeneration != current.Generation:
				return errors.New("no Ready condition for the current generation yet")
			case cond.Status == metav1.ConditionTrue:
				return nil
			case cond.Reason == "InvalidSpec" || cond.Reason == "Conflict":
				return finalError{fmt.Errorf("not Ready: %s: %s", cond.Reason, cond.Message)}
			}
			return errors.New(cond.Reason + ": " + cond.Message)
		})
		if err != nil {
			return fmt.Errorf("TaskTemplate %s: %w", key.Name, err)
		}
		s.sayf(begin, "TaskTemplate %-24s Ready (%s/%s %s)", key.Name, t.Spec.NamespaceName, t.Spec.Name, t.Spec.Version)
	}
	return nil
}

// runPoolWorkers waits for the Deployment the operator made for the pool
// and runs, in this process, one worker per replica with the Deployment's
// command line and environment: what its pods would run. Only the probe
// address changes, to a free local port.
func (s *devSystem) runPoolWorkers(ctx context.Context, pool *workflowsv1alpha1.WorkerPool) error {
	begin := time.Now()
	c, err := s.kubeClient()
	if err != nil {
		return err
	}
	deployment := &appsv1.Deployment{}
	key := client.ObjectKeyFromObject(pool)
	err = waitFor(ctx, func() error {
		if err := c.Get(ctx, key, deployment); err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("the operator has not made Deployment %s yet", key)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	container, err := workerContainer(deployment)
	if err != nil {
		return err
	}
	replicas := 1
	if deployment.Spec.Replicas != nil && *deployment.Spec.Replicas > 1 {
		replicas = int(*deployment.Spec.Replicas)
	}
	for i := range replicas {
		podName := fmt.Sprintf("%s-dev-%d", deployment.Name, i)
		env, err := s.resolveEnv(ctx, c, deployment.Namespace, podName, container.Env)
		if err != nil {
			return fmt.Errorf("deployment %s: %w", key, err)
		}
		health, err := freeAddress(ctx, "127.0.0.1:0")
		if err != nil {
			return err
		}
		args := append(slices.Clone(container.Args[1:]), "--health-listen="+health)
		worker := withEnv(env, newWorkerCommand)
		s.goCommand("worker "+podName, worker, args...)
		if err := waitHTTPOK(ctx, "http://"+health+"/readyz"); err != nil {
			return fmt.Errorf("worker %s did not get ready: %w", podName, err)
		}
	}
	command := "tasker " + strings.Join(container.Args, " ")
	s.workerCommands = append(s.workerCommands, command)
	s.sayf(begin, "WorkerPool %s: %d worker(s) running `%s`", pool.Name, replicas, command)
	return nil
}

// workerContainer returns the Deployment's `tasker worker` container.
func workerContainer(d *appsv1.Deployment) (*corev1.Container, error) {
	for i := range d.Spec.Template.Spec.Containers {
		c := &d.Spec.Template.Spec.Containers[i]
		if len(c.Command) == 0 && len(c.Args) > 0 && c.Args[0] == "worker" {
			return c, nil
		}
	}
	return nil, fmt.Errorf("deployment %s/%s has no container running `tasker worker`", d.Namespace, d.Name)
}

// resolveEnv computes a container's environment as the kubelet would for a
// pod named podName: literal values, Secret keys and the pod's name.
func (s *devSystem) resolveEnv(ctx context.Context, c client.Client, namespace, podName string, vars []corev1.EnvVar) (map[string]string, error) {
	env := map[string]string{}
	for _, v := range vars {
		switch from := v.ValueFrom; {
		case from == nil:
			env[v.Name] = v.Value
		case from.SecretKeyRef != nil:
			secret := &corev1.Secret{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: from.SecretKeyRef.Name}, secret); err != nil {
				return nil, fmt.Errorf("env %s: %w", v.Name, err)
			}
			value, ok := secret.Data[from.SecretKeyRef.Key]
			if !ok {
				return nil, fmt.Errorf("env %s: Secret %s has no key %q", v.Name, from.SecretKeyRef.Name, from.SecretKeyRef.Key)
			}
			env[v.Name] = string(value)
		case from.FieldRef != nil && from.FieldRef.FieldPath == "metadata.name":
			env[v.Name] = podName
		case from.FieldRef != nil && from.FieldRef.FieldPath == "metadata.namespace":
			env[v.Name] = namespace
		default:
			return nil, fmt.Errorf("env %s: tasker dev cannot resolve its valueFrom", v.Name)
		}
	}
	return env, nil
}

// withEnv builds a command while the environment holds env: flag defaults
// read the environment when the command is built, as in a container.
func withEnv[T any](env map[string]string, build func() T) T {
	saved := map[string]*string{}
	for name, value := range env {
		if old, ok := os.LookupEnv(name); ok {
			saved[name] = &old
		} else {
			saved[name] = nil
		}
		_ = os.Setenv(name, value)
	}
	defer func() {
		for name, old := range saved {
			if old == nil {
				_ = os.Unsetenv(name)
			} else {
				_ = os.Setenv(name, *old)
			}
		}
	}()
	return build()
}

// waitHTTPOK polls url until it answers 200.
func waitHTTPOK(ctx context.Context, url string) error {
	return waitFor(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	})
}
