package controllers

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
)

// The checks here find what the API server accepts but the controller
// cannot use. Each one becomes a blocker whose message says exactly what is
// wrong and how to fix it; none is retried, because a watch event brings
// the fix.

// poolDefaultSecretKey is the Secret key the CRD defaults secretRef.key to.
const poolDefaultSecretKey = "url"

// Environment variables the operator sets on the worker container.
const (
	poolEnvDatabaseURL = "TASKER_DATABASE_URL"
	poolEnvWorkerID    = "TASKER_WORKER_ID"
)

// checkPoolSpec is the step that rejects specs the API server accepts but
// the Deployment cannot express.
func checkPoolSpec(_ context.Context, s *poolState) error {
	s.blocker = poolSpecProblem(s.pool)
	return nil
}

// poolSpecProblem returns what makes pool's spec unusable, or nil.
func poolSpecProblem(pool *workflowsv1alpha1.WorkerPool) *poolBlocker {
	if len(pool.Name) > validation.LabelValueMaxLength {
		return &poolBlocker{poolReasonInvalidSpec, fmt.Sprintf(
			"metadata.name is %d characters long, but it becomes the value of the label %s of the worker pods, which allows at most %d; recreate the pool with a shorter name",
			len(pool.Name), poolLabelInstance, validation.LabelValueMaxLength)}
	}
	for i, env := range pool.Spec.Env {
		if env.Name == poolEnvDatabaseURL || env.Name == poolEnvWorkerID {
			return &poolBlocker{poolReasonInvalidSpec, fmt.Sprintf(
				"spec.env[%d] sets %s, which the operator sets itself (%s from spec.database.secretRef, %s from the pod name); remove it from spec.env",
				i, env.Name, poolEnvDatabaseURL, poolEnvWorkerID)}
		}
	}
	return nil
}

// poolSecretKey returns the key of the pool's Secret that holds the
// database URL.
func poolSecretKey(pool *workflowsv1alpha1.WorkerPool) string {
	if key := pool.Spec.Database.SecretRef.Key; key != "" {
		return key
	}
	return poolDefaultSecretKey
}

// checkSecret is the step that makes sure the Secret named by
// spec.database.secretRef exists and holds a non-empty value under the key:
// without it every worker pod would fail to start. It reads the Secret from
// the API server (the Secret watch caches metadata only).
func (r *workerPoolReconciler) checkSecret(ctx context.Context, s *poolState) error {
	name := types.NamespacedName{Namespace: s.pool.Namespace, Name: s.pool.Spec.Database.SecretRef.Name}
	var secret corev1.Secret
	err := r.reader.Get(ctx, name, &secret)
	if apierrors.IsNotFound(err) {
		s.blocker = &poolBlocker{poolReasonSecretNotFound, fmt.Sprintf(
			"Secret %s (spec.database.secretRef.name) not found; create it with the PostgreSQL connection URL under the key %q",
			name, poolSecretKey(s.pool))}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading Secret %s of WorkerPool %s: %w", name, s.pool.Name, err)
	}
	s.blocker = poolSecretProblem(&secret, poolSecretKey(s.pool))
	return nil
}

// poolSecretProblem returns what makes secret unusable as the source of the
// database URL under key, or nil. The message names the Secret's keys,
// never its values.
func poolSecretProblem(secret *corev1.Secret, key string) *poolBlocker {
	value, ok := secret.Data[key]
	if !ok {
		keys := slices.Sorted(maps.Keys(secret.Data))
		return &poolBlocker{poolReasonSecretKeyNotFound, fmt.Sprintf(
			"Secret %s/%s has no key %q (spec.database.secretRef.key); its keys are [%s]",
			secret.Namespace, secret.Name, key, strings.Join(keys, ", "))}
	}
	if len(bytes.TrimSpace(value)) == 0 {
		return &poolBlocker{poolReasonSecretKeyEmpty, fmt.Sprintf(
			"key %q of Secret %s/%s is empty; it must hold the PostgreSQL connection URL",
			key, secret.Namespace, secret.Name)}
	}
	return nil
}
