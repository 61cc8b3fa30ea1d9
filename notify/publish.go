package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// Publisher is the part of SNS the function uses.
type Publisher interface {
	Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Publish sends n to topicARN, with MessageStructure=json when it has
// variants: each kind of subscriber gets its own (Notification.Structured).
//
// The error, wrapped as "publish notification: ...", is for the caller to
// log, put in the report's problems and fail the invocation with once every
// action is done: a notification never changes a decision.
func Publish(ctx context.Context, api Publisher, topicARN string, n Notification) error {
	if api == nil || topicARN == "" {
		return errors.New("publish notification: no SNS client or topic ARN")
	}
	in := &sns.PublishInput{
		TopicArn: aws.String(topicARN),
		Message:  aws.String(n.Message),
	}
	if n.structured() {
		in.Message, in.MessageStructure = aws.String(n.Structured()), aws.String("json")
	}
	if n.Subject != "" {
		in.Subject = aws.String(n.Subject)
	}
	if len(n.Attributes) > 0 {
		in.MessageAttributes = make(map[string]snstypes.MessageAttributeValue, len(n.Attributes))
		for name, v := range n.Attributes {
			in.MessageAttributes[name] = snstypes.MessageAttributeValue{
				DataType:    aws.String(attributeType(name)),
				StringValue: aws.String(v),
			}
		}
	}
	if _, err := api.Publish(ctx, in); err != nil {
		return fmt.Errorf("publish notification: %w", err)
	}
	return nil
}
