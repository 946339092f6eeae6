package controllers

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
)

func TestWorkerPoolSpecProblem(t *testing.T) {
	t.Parallel()

	pool := func(name string, env ...corev1.EnvVar) *workflowsv1alpha1.WorkerPool {
		return &workflowsv1alpha1.WorkerPool{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       workflowsv1alpha1.WorkerPoolSpec{Env: env},
		}
	}
	tests := []struct {
		name    string
		pool    *workflowsv1alpha1.WorkerPool
		message string // empty: no problem
	}{
		{"Usable", pool("workers", corev1.EnvVar{Name: "LOG_LEVEL", Value: "debug"}), ""},
		{"NameOfSixtyThreeCharacters", pool(strings.Repeat("a", 63)), ""},
		{
			"NameTooLongForALabel", pool(strings.Repeat("a", 64)),
			"metadata.name is 64 characters long, but it becomes the value of the label app.kubernetes.io/instance of the worker pods, which allows at most 63; recreate the pool with a shorter name",
		},
		{
			"EnvSetsTheDatabaseURL", pool("workers", corev1.EnvVar{Name: "A"}, corev1.EnvVar{Name: "TASKER_DATABASE_URL", Value: "postgres://x"}),
			"spec.env[1] sets TASKER_DATABASE_URL, which the operator sets itself (TASKER_DATABASE_URL from spec.database.secretRef, TASKER_WORKER_ID from the pod name); remove it from spec.env",
		},
		{
			"EnvSetsTheWorkerID", pool("workers", corev1.EnvVar{Name: "TASKER_WORKER_ID", Value: "w"}),
			"spec.env[0] sets TASKER_WORKER_ID, which the operator sets itself (TASKER_DATABASE_URL from spec.database.secretRef, TASKER_WORKER_ID from the pod name); remove it from spec.env",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			problem := poolSpecProblem(tt.pool)
			if tt.message == "" {
				require.Nil(t, problem)
				return
			}
			require.Equal(t, &poolBlocker{poolReasonInvalidSpec, tt.message}, problem)
		})
	}
}

func TestWorkerPoolSecretProblem(t *testing.T) {
	t.Parallel()

	secret := func(data map[string]string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "db"}, Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		return s
	}
	tests := []struct {
		name    string
		secret  *corev1.Secret
		problem *poolBlocker
	}{
		{"Usable", secret(map[string]string{"url": "postgres://db/tasker"}), nil},
		{
			"KeyMissingNamesTheKeysThatExist", secret(map[string]string{"password": "hunter2", "host": "db"}),
			&poolBlocker{poolReasonSecretKeyNotFound, `Secret ns/db has no key "url" (spec.database.secretRef.key); its keys are [host, password]`},
		},
		{
			"NoKeysAtAll", secret(nil),
			&poolBlocker{poolReasonSecretKeyNotFound, `Secret ns/db has no key "url" (spec.database.secretRef.key); its keys are []`},
		},
		{
			"EmptyValue", secret(map[string]string{"url": " \n"}),
			&poolBlocker{poolReasonSecretKeyEmpty, `key "url" of Secret ns/db is empty; it must hold the PostgreSQL connection URL`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			problem := poolSecretProblem(tt.secret, "url")
			require.Equal(t, tt.problem, problem)
			if problem != nil {
				require.NotContains(t, problem.message, "hunter2", "values never appear in conditions")
			}
		})
	}
}
