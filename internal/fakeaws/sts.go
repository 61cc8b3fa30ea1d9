package fakeaws

// getCallerIdentityResponse follows the awsQuery envelope the SDK reads:
// GetCallerIdentityResponse/GetCallerIdentityResult.
type getCallerIdentityResponse struct {
	XMLName struct{} `xml:"GetCallerIdentityResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

func (r *getCallerIdentityResponse) setRequestID(id string) { r.Xmlns, r.RequestID = stsNamespace, id }

func (a *Account) getCallerIdentity() *getCallerIdentityResponse {
	r := &getCallerIdentityResponse{}
	r.Result.Arn = "arn:aws:iam::" + a.id + ":user/test"
	r.Result.UserID = "AIDAFAKEAWSTESTUSER01"
	r.Result.Account = a.id
	return r
}
