package handler

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// Resizer is the part of EC2 that shrinks a reservation.
type Resizer interface {
	ModifyCapacityReservation(context.Context, *ec2.ModifyCapacityReservationInput, ...func(*ec2.Options)) (*ec2.ModifyCapacityReservationOutput, error)
}

// Modified is a shrink made.
type Modified struct {
	ReservationID string `json:"reservationId"`
	From          int32  `json:"from"`
	To            int32  `json:"to"`
}
