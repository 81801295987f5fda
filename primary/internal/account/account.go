// Package account signs people up: the one sign-up the primary's two
// front ends, the browser form and the JSON API, both run, so that they
// accept, refuse and fail alike. (They had drifted: the form answered 400
// to every failure to hash a password, the API 500 to those not the
// password policy's, without logging why.)
package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"strings"

	"shortfleet/primary/internal/auth"
	"shortfleet/primary/internal/store"
)

// ValidEmail normalises an email address, or says it is not one.
func ValidEmail(s string) (string, error) {
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != strings.TrimSpace(s) || len(addr.Address) > 254 {
		return "", fmt.Errorf("email %q is not a valid address", s)
	}
	return strings.ToLower(addr.Address), nil
}

// Accounts creates accounts.
type Accounts struct {
	st     *store.Store
	hasher auth.Hasher
	logger *slog.Logger
}

// New returns Accounts creating accounts in st, their passwords hashed by
// hasher; failures that are the server's are logged to logger.
func New(st *store.Store, hasher auth.Hasher, logger *slog.Logger) *Accounts {
	return &Accounts{st: st, hasher: hasher, logger: logger}
}

// Failure is a sign-up that did not happen, classified once for both
// front ends: each answers Status, in its own format.
type Failure struct {
	// Status is the HTTP status to answer: 400 for an email or password
	// the policy refuses, 409 for an email taken, 503 while the database
	// is unreachable (answer with Retry-After), 500 for anything else.
	Status int
	// Message says what went wrong, in the API's words: for a 400 the
	// policy's own, which both front ends show; for a 5xx never the
	// cause, which SignUp has logged.
	Message string
	// Cause is the error behind the failure.
	Cause error
}

// SignUp validates email, hashes password and creates the account with a
// first API key, which it returns (only the key's hash is stored). The
// caller charges the sign-up to the rate limits first: hashing is what
// they bound.
func (a *Accounts) SignUp(ctx context.Context, email, password string) (store.User, string, *Failure) {
	email, err := ValidEmail(email)
	if err != nil {
		return store.User{}, "", &Failure{Status: http.StatusBadRequest, Message: err.Error(), Cause: err}
	}
	hash, err := a.hasher.Hash(password)
	if errors.Is(err, auth.ErrPasswordPolicy) {
		return store.User{}, "", &Failure{Status: http.StatusBadRequest, Message: err.Error(), Cause: err}
	}
	if err != nil {
		return store.User{}, "", a.internal(err)
	}
	u, key, err := a.st.CreateUser(ctx, email, hash)
	switch {
	case errors.Is(err, store.ErrEmailTaken):
		return store.User{}, "", &Failure{Status: http.StatusConflict, Message: "an account with email " + email + " exists already", Cause: err}
	case errors.Is(err, store.ErrUnavailable):
		a.logger.Warn("create the account: database unavailable", "err", err)
		return store.User{}, "", &Failure{Status: http.StatusServiceUnavailable,
			Message: "the database is unavailable; could not create the account. Try again shortly.", Cause: err}
	case err != nil:
		return store.User{}, "", a.internal(fmt.Errorf("create the account: %w", err))
	}
	a.logger.Info("account created", "user_id", u.ID)
	return u, key, nil
}

// internal is a failure that is the server's: logged, and answered 500
// without its detail.
func (a *Accounts) internal(err error) *Failure {
	a.logger.Error("sign-up failed", "err", err)
	return &Failure{Status: http.StatusInternalServerError, Message: "internal error while trying to create the account", Cause: err}
}
