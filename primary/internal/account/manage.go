package account

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"shortfleet/primary/internal/auth"
	"shortfleet/primary/internal/store"
)

// ChangePassword changes user u's password, given the current one, and
// ends every other session of the user: all but the one whose token is
// keepToken (the browser's own; empty from the API, which has none).
// API keys stay. Both front ends run it, and charge it to the log-in
// limits first, since it checks a password. The Failure's Status is 400
// for a new password the policy refuses, 403 for a wrong current one.
func (a *Accounts) ChangePassword(ctx context.Context, u store.User, current, next, keepToken string) (int64, *Failure) {
	if err := a.st.CheckPassword(ctx, u.ID, current); err != nil {
		return 0, a.storeFailure("check the current password", err)
	}
	hash, err := a.hasher.Hash(next)
	if errors.Is(err, auth.ErrPasswordPolicy) {
		return 0, &Failure{Status: http.StatusBadRequest, Message: "new_password: " + err.Error(), Cause: err}
	}
	if err != nil {
		return 0, a.fail(fmt.Errorf("hash the new password: %w", err))
	}
	ended, err := a.st.SetPassword(ctx, u.ID, hash, keepToken)
	if err != nil {
		return 0, a.storeFailure("change the password", err)
	}
	a.logger.Info("password changed", "user_id", u.ID, "sessions_ended", ended)
	return ended, nil
}

// DeleteAccount deletes user u, given the password again (see
// store.DeleteAccount for what goes and what stays). Status 403 is a
// wrong password.
func (a *Accounts) DeleteAccount(ctx context.Context, u store.User, password string) (int, *Failure) {
	if err := a.st.CheckPassword(ctx, u.ID, password); err != nil {
		return 0, a.storeFailure("check the password", err)
	}
	n, err := a.st.DeleteAccount(ctx, u.ID)
	if err != nil {
		return 0, a.storeFailure("delete the account", err)
	}
	a.logger.Info("account deleted", "user_id", u.ID, "links_tombstoned", n)
	return n, nil
}

// storeFailure classifies a store error: a wrong password 403, the
// database unreachable 503, anything else 500 (logged).
func (a *Accounts) storeFailure(what string, err error) *Failure {
	switch {
	case errors.Is(err, store.ErrBadLogin):
		return &Failure{Status: http.StatusForbidden, Message: "the password is wrong", Cause: err}
	case errors.Is(err, store.ErrUnavailable):
		a.logger.Warn(what+": database unavailable", "err", err)
		return &Failure{Status: http.StatusServiceUnavailable, Message: "the database is unavailable; could not " + what + ". Try again shortly.", Cause: err}
	}
	return a.fail(fmt.Errorf("%s: %w", what, err))
}

func (a *Accounts) fail(err error) *Failure {
	a.logger.Error("account change failed", "err", err)
	return &Failure{Status: http.StatusInternalServerError, Message: "internal error while changing the account", Cause: err}
}
