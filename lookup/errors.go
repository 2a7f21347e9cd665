package lookup

import "net/http"

// apiError is an error as the AWS JSON 1.1 protocol sends it: a body
// {"__type": Code, "message": Message}, the code again in X-Amzn-ErrorType,
// and an HTTP status.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// LookupEvents' own errors, as CloudTrail's API reference names them.
func errInvalidLookupAttributes(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidLookupAttributesException", msg}
}

func errInvalidTimeRange(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidTimeRangeException", msg}
}

var (
	errInvalidNextToken = &apiError{http.StatusBadRequest, "InvalidNextTokenException",
		"Invalid NextToken: it is not one this server issued, was issued for a request with other parameters or to another access key, or has expired (" + TokenLifetime.String() + " after its page)."}
	errInvalidMaxResults = &apiError{http.StatusBadRequest, "InvalidMaxResultsException",
		"MaxResults must be from 1 to 50."}
	errInvalidEventCategory = &apiError{http.StatusBadRequest, "InvalidEventCategoryException",
		"EventCategory must be insight."}
)

// The protocol's and the access check's errors, as AWS's JSON services send
// them.
var (
	errMissingAuth = &apiError{http.StatusForbidden, "MissingAuthenticationTokenException",
		"Missing Authentication Token"}
	errUnrecognizedClient = &apiError{http.StatusForbidden, "UnrecognizedClientException",
		"The security token included in the request is invalid."}
	errThrottled = &apiError{http.StatusBadRequest, "ThrottlingException", "Rate exceeded"}
	errInternal  = &apiError{http.StatusInternalServerError, "InternalFailure",
		"The request processing has failed because of an unknown error, exception or failure."}
)

func errIncompleteSignature(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "IncompleteSignatureException", msg}
}

func errInvalidSignature(msg string) *apiError {
	return &apiError{http.StatusForbidden, "InvalidSignatureException", msg}
}

func errSerialization(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "SerializationException", msg}
}

func errUnknownOperation(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "UnknownOperationException", msg}
}

func errUnsupportedOperation(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "UnsupportedOperationException", msg}
}
