package auth

import "context"

type principalKey struct{}

// WithPrincipal returns ctx carrying the authenticated principal; the API's
// authentication middleware sets it once per request.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of an authenticated request's context.
// Route packages and the embedded WebDAV and tus handlers read it from there,
// so none of them needs the server's types.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok && p.UserID != ""
}
