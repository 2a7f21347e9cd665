package sigma

import (
	"fmt"
	"strings"
)

// recordFields are the top-level fields a CloudTrail record can have: those
// of management, data and network activity events and of Insights events,
// as AWS's "CloudTrail record contents" page lists them. A rule whose field
// begins with anything else can never match, so it is refused at load (the
// status field of some SigmaHQ rules is a SIEM's, not CloudTrail's).
// Nested names are not checked: requestParameters and responseElements
// hold whatever each API takes and returns.
var recordFields = map[string]bool{
	"eventTime": true, "eventVersion": true, "userIdentity": true, "eventSource": true,
	"eventName": true, "awsRegion": true, "sourceIPAddress": true, "userAgent": true,
	"errorCode": true, "errorMessage": true, "requestParameters": true, "responseElements": true,
	"additionalEventData": true, "requestID": true, "eventID": true, "eventType": true,
	"apiVersion": true, "managementEvent": true, "readOnly": true, "resources": true,
	"recipientAccountId": true, "serviceEventDetails": true, "sharedEventID": true,
	"vpcEndpointId": true, "vpcEndpointAccountId": true, "eventCategory": true, "addendum": true,
	"sessionCredentialFromConsole": true, "edgeDeviceDetails": true, "tlsDetails": true,
	"eventContext": true, "insightDetails": true,
}

// checkField returns an error if field cannot name anything in a
// CloudTrail record.
func checkField(field string) error {
	first, _, _ := strings.Cut(field, ".")
	if recordFields[first] {
		return nil
	}
	for known := range recordFields {
		if strings.EqualFold(known, first) {
			return fmt.Errorf("field %s: CloudTrail records have no field %s (field names are case-sensitive: %s?)", field, first, known)
		}
	}
	return fmt.Errorf("field %s: CloudTrail records have no field %s, so the rule could never match", field, first)
}
